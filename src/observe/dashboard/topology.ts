import type { AnyService, EventDef } from '../../service/service.ts';

/** One event of a service as the topology shows it. */
export type TopologyEvent =
  | { kind: 'http'; name: string; method: string; path: string }
  | { kind: 'consumer'; name: string; stream: string; group: string }
  | { kind: 'loop'; name: string }
  | { kind: 'command'; name: string };

/** What the dashboard draws: services and their events, and for each stream who emits it and who consumes it. */
export interface Topology {
  services: { name: string; version: string; description?: string; events: TopologyEvent[]; emits: string[] }[];
  streams: { name: string; producers: string[]; consumers: { service: string; group: string; event: string }[] }[];
}

/** Builds the topology from the hosted services' definitions. */
export function buildTopology(services: readonly AnyService[]): Topology {
  const streams = new Map<string, Topology['streams'][number]>();
  const stream = (name: string): Topology['streams'][number] => {
    let found = streams.get(name);
    if (found === undefined) {
      found = { name, producers: [], consumers: [] };
      streams.set(name, found);
    }
    return found;
  };
  const out: Topology['services'] = [];
  for (const service of services) {
    const events = service.events.map((event) => {
      if (event.kind === 'consumer') {
        stream(event.stream.name).consumers.push({ service: service.info.name, group: event.group, event: event.name });
      }
      return topologyEvent(event);
    });
    const emits = [...service.emitted.keys()];
    for (const name of emits) stream(name).producers.push(service.info.name);
    out.push({
      name: service.info.name,
      version: service.info.version,
      ...(service.description !== undefined ? { description: service.description } : {}),
      events,
      emits,
    });
  }
  return { services: out, streams: [...streams.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

function topologyEvent(event: EventDef): TopologyEvent {
  switch (event.kind) {
    case 'http':
      return { kind: 'http', name: event.name, method: event.method, path: event.path };
    case 'consumer':
      return { kind: 'consumer', name: event.name, stream: event.stream.name, group: event.group };
    case 'loop':
      return { kind: 'loop', name: event.name };
    case 'command':
      return { kind: 'command', name: event.name };
  }
}
