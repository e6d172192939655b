import { GantryError } from '../errors/gantry-error.ts';
import type { Bus } from './bus.ts';

/** Options every adapter may read, beyond its URL. */
export interface BusResolveOptions {
  /** Names the process to brokers that track consumers. */
  instanceId: string;
}

/** Opens one adapter; `raw` is the URL as written, for schemes whose URLs are not WHATWG URLs (Kafka broker lists). */
type BusFactory = (url: URL, options: BusResolveOptions, raw: string) => Promise<Bus>;

/**
 * The adapters by URL scheme. Each loads its client library only when chosen, so a user of one broker never loads
 * another's client.
 */
const adapters: Record<string, BusFactory> = {
  'memory:': async (url) => {
    const claim = url.searchParams.get('claimTimeoutMs');
    return new (await import('./memory/index.ts')).MemoryBus(claim === null ? {} : { claimTimeoutMs: Number(claim) });
  },
  'amqp:': async (url, options) => (await import('./amqp/index.ts')).openAmqpBus(url, options),
  'amqps:': async (url, options) => (await import('./amqp/index.ts')).openAmqpBus(url, options),
  'postgres:': async (url, options) => (await import('./postgres/index.ts')).openPostgresBus(url, options),
  'postgresql:': async (url, options) => (await import('./postgres/index.ts')).openPostgresBus(url, options),
  'pglite:': async (url, options) => (await import('./postgres/index.ts')).openPgliteBus(url, options),
  'kafka:': async (_url, options, raw) => (await import('./kafka/index.ts')).createKafkaBus(raw, options),
  'nats:': async (url, options) => (await import('./nats/index.ts')).openNatsJetStreamBus(url, options),
  'redis:': async (url, options) => (await import('./redis/index.ts')).createRedisStreamsBus(url, options),
  'rediss:': async (url, options) => (await import('./redis/index.ts')).createRedisStreamsBus(url, options),
};

/** The URL schemes {@link resolveBus} accepts. */
export function busSchemes(): string[] {
  return Object.keys(adapters);
}

/** Opens the bus a URL names (`memory:`, ...); an unknown scheme gets an error listing the valid ones. */
export async function resolveBus(url: string, options: BusResolveOptions): Promise<Bus> {
  let parsed: URL;
  try {
    // A list of brokers (`kafka://a:9092,b:9092`) is no WHATWG URL: parse its first host, hand the adapter the rest.
    parsed = new URL(url.replace(/^(kafka:\/\/[^,/?]+)(,[^/?]*)/, '$1'));
  } catch {
    throw new GantryError(
      'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
      `bus URL '${url}' is not a URL; use one of ${busSchemes().join(', ')}`,
    );
  }
  const factory = adapters[parsed.protocol];
  if (!factory) {
    throw new GantryError(
      'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
      `bus URL scheme '${parsed.protocol}' is not supported; use one of ${busSchemes().join(', ')}`,
    );
  }
  return factory(parsed, options, url);
}
