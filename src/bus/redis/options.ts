import { GantryError } from '../../errors/gantry-error.ts';

/**
 * The tuning of a {@link RedisStreamsBus}, read from the query string of its URL
 * (`redis://host:6379/0?claimTimeoutMs=10000&maxLen=500000`).
 */
export interface RedisStreamsOptions {
  /**
   * Approximate cap on the entries kept per stream (`XADD ... MAXLEN ~ n`); `0` keeps every entry. A group that falls
   * further behind than this loses the oldest messages it has not read. Default 1,000,000.
   */
  maxLen: number;
  /** How long a delivery may stay unsettled before another consumer of the group claims it, in ms. Default 30,000. */
  claimTimeoutMs: number;
  /** Prefix of every key the bus writes, so several apps or test runs can share one server. Default `gantry:`. */
  prefix: string;
  /** Longest wait of one blocking read (`XREADGROUP BLOCK`), in ms; bounds how long `stop()` may wait. Default 2,000. */
  blockMs: number;
  /**
   * How long a command (a publish, an ack) may wait for the server, including while the client reconnects, before it
   * fails, in ms. Default 10,000.
   */
  commandTimeoutMs: number;
}

/** Where to connect: what ioredis needs, taken apart from the URL by {@link parseRedisStreamsUrl}. */
export interface RedisConnectionTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** True for `rediss://`: the connection uses TLS, with the host name checked against the certificate. */
  tls: boolean;
}

const DEFAULTS: RedisStreamsOptions = {
  maxLen: 1_000_000,
  claimTimeoutMs: 30_000,
  prefix: 'gantry:',
  blockMs: 2_000,
  commandTimeoutMs: 10_000,
};

/** The smallest value each numeric option accepts. */
const MINIMUM: Record<Exclude<keyof RedisStreamsOptions, 'prefix'>, number> = {
  maxLen: 0,
  claimTimeoutMs: 100,
  blockMs: 10,
  commandTimeoutMs: 100,
};

/**
 * Reads a `redis://` or `rediss://` URL: user, password, host, port and database number for the connection, and the
 * bus options of {@link RedisStreamsOptions} from the query string. An unknown or malformed option fails with
 * `GANTRY_ERR_CONFIG_INVALID`; the error names the option, never the rest of the URL (it may hold a password).
 *
 * @example
 * parseRedisStreamsUrl(new URL('rediss://:secret@cache.internal:6380/2?claimTimeoutMs=5000'));
 * // → { target: { host: 'cache.internal', port: 6380, db: 2, password: 'secret', tls: true }, options: { ... } }
 */
export function parseRedisStreamsUrl(url: URL): { target: RedisConnectionTarget; options: RedisStreamsOptions } {
  const options: RedisStreamsOptions = { ...DEFAULTS };
  for (const [name, value] of url.searchParams) {
    if (name === 'prefix') {
      options.prefix = value;
      continue;
    }
    if (!(name in MINIMUM)) {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `redis bus URL: unknown option '${name}'; use one of prefix, ${Object.keys(MINIMUM).join(', ')}`,
      );
    }
    const key = name as keyof typeof MINIMUM;
    const number = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(number) || number < MINIMUM[key]) {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `redis bus URL: option '${name}' must be an integer of at least ${MINIMUM[key]}, got '${value}'`,
      );
    }
    options[key] = number;
  }

  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db) || db < 0) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `redis bus URL: the path must be a database number, got '/${dbText}'`,
    );
  }
  const target: RedisConnectionTarget = {
    // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
    host: url.hostname === '' ? '127.0.0.1' : url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    db,
    tls: url.protocol === 'rediss:',
  };
  if (url.username !== '') target.username = decodeURIComponent(url.username);
  if (url.password !== '') target.password = decodeURIComponent(url.password);
  return { target, options };
}
