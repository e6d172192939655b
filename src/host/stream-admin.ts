import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { requireRole } from '../auth/guard.ts';
import type { Bus } from '../bus/bus.ts';
import type { CounterBook } from '../bus/counters.ts';
import { DEAD_LETTER_GROUP, peekDeadLetters, replayDeadLetters } from '../bus/dead-letters.ts';
import type { AnyService } from '../service/service.ts';

/** The role that stream administration requires in prod. */
export const STREAMS_ADMIN_ROLE = 'ops';

/** Every stream the services emit or consume, with the groups that consume it. */
export function streamTopology(services: readonly AnyService[]): Map<string, Set<string>> {
  const streams = new Map<string, Set<string>>();
  for (const svc of services) {
    for (const stream of svc.emitted.keys()) if (!streams.has(stream)) streams.set(stream, new Set());
    for (const event of svc.events) {
      if (event.kind !== 'consumer') continue;
      const groups = streams.get(event.stream.name) ?? new Set<string>();
      groups.add(event.group);
      streams.set(event.stream.name, groups);
    }
  }
  return streams;
}

const StreamParams = Type.Object({ stream: Type.String({ pattern: '^[a-z][a-z0-9_.-]*$' }) });
const MaxQuery = Type.Object({ max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 20 })) });

/**
 * The stream administration API under `/_gantry/streams` (what `gantry streams` calls): streams and groups with
 * lag and counters, dead letters, replay, and a live tail as server-sent events. Guarded by the `ops` role in prod.
 */
export function registerStreamAdmin(
  app: FastifyInstance,
  deps: { services: readonly AnyService[]; bus: () => Bus; counters: CounterBook; consumerName: string },
): void {
  const guard = { onRequest: requireRole(STREAMS_ADMIN_ROLE) };
  app.get('/_gantry/streams', guard, async () => {
    const bus = deps.bus();
    const result = [];
    for (const [stream, groups] of streamTopology(deps.services)) {
      const rows = [];
      for (const group of groups)
        rows.push({ group, lag: (await bus.stats(stream, group)).lag ?? null, ...deps.counters.of(stream, group) });
      const deadLetters = (await bus.stats(`${stream}.dlq`, DEAD_LETTER_GROUP)).lag ?? null;
      result.push({ stream, published: deps.counters.of(stream).published, groups: rows, deadLetters });
    }
    return { bus: deps.bus().kind, streams: result };
  });
  app.get(
    '/_gantry/streams/:stream/dead-letters',
    { ...guard, schema: { params: StreamParams, querystring: MaxQuery } },
    async (request) => {
      const { stream } = request.params as { stream: string };
      const { max } = request.query as { max?: number };
      return peekDeadLetters(deps.bus(), stream, max ?? 20, deps.consumerName);
    },
  );
  app.post(
    '/_gantry/streams/:stream/dead-letters/replay',
    { ...guard, schema: { params: StreamParams, querystring: MaxQuery } },
    async (request) => {
      const { stream } = request.params as { stream: string };
      const { max } = request.query as { max?: number };
      return replayDeadLetters(deps.bus(), stream, max ?? 100, deps.consumerName);
    },
  );
  app.get('/_gantry/streams/:stream/tail', { ...guard, schema: { params: StreamParams } }, async (request, reply) => {
    const { stream } = request.params as { stream: string };
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    reply.raw.write(': tailing\n\n');
    // A group of its own, starting now: the tail sees new messages and takes nothing from the real consumers.
    const subscription = await deps.bus().subscribe(
      stream,
      `gantry-tail-${randomUUID().slice(0, 8)}`,
      async (delivery) => {
        reply.raw.write(`data: ${JSON.stringify(delivery.envelope ?? { undecodable: delivery.decodeError })}\n\n`);
        await delivery.ack();
      },
      { concurrency: 1, consumerName: deps.consumerName },
    );
    const heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), 15_000);
    request.raw.once('close', () => {
      clearInterval(heartbeat);
      void subscription.stop();
    });
  });
}
