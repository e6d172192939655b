import { GantryError } from '../../errors/gantry-error.ts';

/** The settings of an {@link AmqpBus}, read from its URL by {@link parseAmqpBusUrl}. */
/**
 * TCP_NODELAY on every connection to the broker. amqplib writes a message as several frames (method, header, body);
 * with Nagle's algorithm on, the kernel holds the later frames until the broker acknowledges the first, and the
 * broker delays that acknowledgement (40 ms on Linux). A request/reply then took 44 ms on loopback instead of 0.9 ms
 * (`npm run bench`, RPC), and a publish waited as long for its confirm.
 */
export const AMQP_NO_DELAY = true;

export interface AmqpBusOptions {
  /** The URL handed to amqplib: scheme, credentials, host, vhost and amqplib's own query options only. */
  connectUrl: string;
  /** The URL with its password hidden, for error messages. */
  displayUrl: string;
  /** The durable topic exchange every stream is published to (routing key = stream name). */
  exchange: string;
  /** How long a delivery may stay unsettled before the adapter gives it back to the broker. */
  claimTimeoutMs: number;
  /** How long `publish` waits for a connection and a confirm before it fails. */
  publishTimeoutMs: number;
  /** How long opening the bus keeps trying to reach the broker before it fails. */
  connectTimeoutMs: number;
  /** The longest pause between two reconnection attempts (backoff doubles from 100 ms up to this). */
  reconnectMaxDelayMs: number;
  /** Shown as the connection name in the broker's management tools. */
  connectionName: string;
}

/** The query options this adapter reads. */
const OWN_OPTIONS = [
  'exchange',
  'claimTimeoutMs',
  'publishTimeoutMs',
  'connectTimeoutMs',
  'reconnectMaxDelayMs',
] as const;
/** amqplib's own query options, passed through to it. */
const CLIENT_OPTIONS = ['heartbeat', 'frameMax', 'channelMax', 'locale', 'maxFrameSize'] as const;

/**
 * Reads the settings of an AMQP bus from its URL.
 *
 * Query options (all optional): `exchange` (default `gantry`), `claimTimeoutMs` (30000), `publishTimeoutMs` (30000),
 * `connectTimeoutMs` (10000), `reconnectMaxDelayMs` (5000). amqplib's own options (`heartbeat`, `frameMax`,
 * `channelMax`, `locale`, `maxFrameSize`) pass through unchanged; any other option is refused, so a misspelt one
 * does not go unnoticed.
 *
 * @param url An `amqp:` or `amqps:` URL.
 * @param instanceId Names the connection in the broker's management tools.
 * @example
 * parseAmqpBusUrl(new URL('amqp://guest:guest@127.0.0.1:5672/?exchange=shop&claimTimeoutMs=60000'), 'orders-1');
 */
export function parseAmqpBusUrl(url: URL, instanceId: string): AmqpBusOptions {
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `AMQP bus URL must start with amqp:// or amqps://, got '${url.protocol}'`,
    );
  }
  const known: readonly string[] = [...OWN_OPTIONS, ...CLIENT_OPTIONS];
  for (const name of url.searchParams.keys()) {
    if (!known.includes(name)) {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `AMQP bus URL option '${name}' is unknown; use ${known.join(', ')}`,
      );
    }
  }
  const exchange = url.searchParams.get('exchange') ?? 'gantry';
  // The broker reserves names starting with 'amq.'; an empty name is the default exchange, which cannot be bound.
  if (exchange === '' || exchange.startsWith('amq.') || Buffer.byteLength(exchange) > 200) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `AMQP bus option exchange must be a non-empty name not starting with 'amq.', got '${exchange}'`,
    );
  }
  const connect = new URL(url.href);
  for (const name of OWN_OPTIONS) connect.searchParams.delete(name);
  const display = new URL(connect.href);
  if (display.password !== '') display.password = '***';
  return {
    connectUrl: connect.href,
    displayUrl: display.href,
    exchange,
    claimTimeoutMs: numberOption(url, 'claimTimeoutMs', 30_000, 1),
    publishTimeoutMs: numberOption(url, 'publishTimeoutMs', 30_000, 1),
    connectTimeoutMs: numberOption(url, 'connectTimeoutMs', 10_000, 0),
    reconnectMaxDelayMs: numberOption(url, 'reconnectMaxDelayMs', 5_000, 100),
    connectionName: instanceId,
  };
}

function numberOption(url: URL, name: string, fallback: number, min: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `AMQP bus option ${name} must be a number ≥ ${min}, got '${raw}'`,
    );
  }
  return value;
}

/** The smallest and largest retry delay tiers, as powers of two of milliseconds (64 ms … about 70 minutes). */
const MIN_TIER_EXPONENT = 6;
const MAX_TIER_EXPONENT = 22;

/** The names of the broker objects behind one bus exchange. */
export interface AmqpTopologyNames {
  /** Fanout exchange receiving what the broker dead-letters from a group queue. */
  deadLetterExchange: string;
  /** The queue bound to {@link deadLetterExchange}, where those messages wait for an operator. */
  deadLetterQueue: string;
  /** The durable queue of one group on one stream. */
  groupQueue(stream: string, group: string): string;
  /** The retry queue of a group for delays up to `tierMs`. */
  retryQueue(groupQueue: string, tierMs: number): string;
  /** Every retry tier, in milliseconds, ascending. */
  readonly retryTiers: readonly number[];
}

/**
 * Names the queues and exchanges of a bus. Group queues are `<exchange>:<stream>:<group>`: stream names never hold a
 * colon, so no two (stream, group) pairs share a queue, and the exchange prefix keeps two buses on one vhost apart.
 */
export function amqpTopologyNames(exchange: string): AmqpTopologyNames {
  const retryTiers: number[] = [];
  for (let e = MIN_TIER_EXPONENT; e <= MAX_TIER_EXPONENT; e++) retryTiers.push(2 ** e);
  return {
    deadLetterExchange: `${exchange}:dead-letter`,
    deadLetterQueue: `${exchange}:dead-letter`,
    groupQueue: (stream, group) => `${exchange}:${stream}:${group}`,
    retryQueue: (groupQueue, tierMs) => `${groupQueue}:retry-${tierMs}`,
    retryTiers,
  };
}

/**
 * The retry tier for a delay: the smallest tier at least as long, or the longest tier. The broker expires messages
 * from the head of a queue only, so a short delay queued behind a longer one waits for it; with tiers a factor of two
 * apart, a delay between 64 ms and the longest tier comes back less than one delay late, a shorter one at most 64 ms
 * late. Never early: each message keeps its exact delay as its own TTL.
 */
export function retryTierFor(delayMs: number): number {
  const exponent = Math.min(MAX_TIER_EXPONENT, Math.max(MIN_TIER_EXPONENT, Math.ceil(Math.log2(Math.max(1, delayMs)))));
  return 2 ** exponent;
}
