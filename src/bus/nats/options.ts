import { GantryError } from '../../errors/gantry-error.ts';

/** How long a JetStream stream keeps messages. */
export type NatsRetention = 'limits' | 'interest';

/** Where JetStream stores the messages of a stream. */
export type NatsStorage = 'file' | 'memory';

/** The settings of a {@link NatsJetStreamBus}, read from its `nats://` URL by {@link parseNatsUrl}. */
export interface NatsJetStreamOptions {
  /** `host:port` of every server to try, the URL's own first. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** The name the connection shows on the server (`connz`). */
  connectionName: string;
  /** First subject token of every Gantry stream and, upper-cased, the first part of every JetStream stream name. */
  prefix: string;
  /** The consumers' `ack_wait`: how long a delivery may stay unsettled before another consumer gets it. */
  claimTimeoutMs: number;
  retention: NatsRetention;
  storage: NatsStorage;
  replicas: number;
  /** The streams' `max_age`; 0 keeps messages until a limit or (with `interest`) every group has acked them. */
  maxAgeMs: number;
  /** The streams' `duplicate_window`: a publish repeating an envelope id within it is stored once. */
  duplicateWindowMs: number;
  /** How long `publish` keeps trying (through reconnects) before it fails. */
  publishTimeoutMs: number;
}

/** The JetStream names that carry one Gantry stream. */
export interface NatsNames {
  /** The subject messages are published on: `<prefix>.<gantry stream>`. */
  subject: string;
  /** The JetStream stream that stores that one subject: `<PREFIX>_<escaped gantry stream>`. */
  stream: string;
}

const DEFAULTS = {
  prefix: 'gantry',
  claimTimeoutMs: 30_000,
  retention: 'limits',
  storage: 'file',
  replicas: 1,
  maxAgeMs: 7 * 24 * 3600 * 1000,
  duplicateWindowMs: 120_000,
  publishTimeoutMs: 30_000,
} as const;

const KNOWN = new Set([
  'prefix',
  'claimTimeoutMs',
  'retention',
  'storage',
  'replicas',
  'maxAgeMs',
  'duplicateWindowMs',
  'publishTimeoutMs',
  'servers',
]);
const PREFIX = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Reads the settings of the NATS JetStream bus from its URL. Credentials come from the user-info part
 * (`nats://user:pass@host` or `nats://token@host`); the rest from the query string:
 *
 * - `claimTimeoutMs` (30000): the consumers' ack wait, after which an unsettled message goes to another consumer.
 * - `prefix` (`gantry`): subjects are `<prefix>.<stream>`, JetStream streams `<PREFIX>_<stream>`; lower-case letters,
 *   digits and `-`. Two applications on one server keep apart with two prefixes.
 * - `retention` (`limits`): `limits` keeps messages for `maxAgeMs` whoever read them; `interest` drops a message once
 *   every group has acked it (and drops at once what is published while no group exists).
 * - `maxAgeMs` (7 days; 0 = no age limit), `duplicateWindowMs` (120000), `storage` (`file` | `memory`), `replicas` (1):
 *   the configuration of the streams this adapter creates; streams that already exist are left as they are.
 * - `publishTimeoutMs` (30000): how long `publish` retries through a lost connection before it fails.
 * - `servers`: more `host:port` seeds, comma-separated, for a cluster.
 *
 * @throws GantryError `GANTRY_ERR_CONFIG_INVALID` on an unknown option or a value out of range.
 * @example
 * parseNatsUrl(new URL('nats://127.0.0.1:4222?claimTimeoutMs=10000'), 'orders-1');
 */
export function parseNatsUrl(url: URL, connectionName: string): NatsJetStreamOptions {
  const query = url.searchParams;
  for (const key of query.keys()) {
    if (!KNOWN.has(key)) invalid(`unknown option '${key}'; known options: ${[...KNOWN].join(', ')}`);
  }
  const prefix = query.get('prefix') ?? DEFAULTS.prefix;
  if (!PREFIX.test(prefix)) invalid(`prefix '${prefix}' must be lower-case letters, digits and '-'`);
  const host = url.hostname === '' ? '127.0.0.1' : url.hostname;
  const servers = [`${host}:${url.port === '' ? '4222' : url.port}`];
  for (const seed of (query.get('servers') ?? '').split(',')) if (seed.trim() !== '') servers.push(seed.trim());
  const duplicateWindowMs = integer(query, 'duplicateWindowMs', DEFAULTS.duplicateWindowMs, 100);
  const maxAgeMs = integer(query, 'maxAgeMs', DEFAULTS.maxAgeMs, 0);
  // JetStream refuses a duplicate window longer than the age limit.
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) invalid('duplicateWindowMs must not exceed maxAgeMs');
  const options: NatsJetStreamOptions = {
    servers,
    connectionName,
    prefix,
    claimTimeoutMs: integer(query, 'claimTimeoutMs', DEFAULTS.claimTimeoutMs, 100),
    retention: oneOf(query, 'retention', ['limits', 'interest'], DEFAULTS.retention),
    storage: oneOf(query, 'storage', ['file', 'memory'], DEFAULTS.storage),
    replicas: integer(query, 'replicas', DEFAULTS.replicas, 1),
    maxAgeMs,
    duplicateWindowMs,
    publishTimeoutMs: integer(query, 'publishTimeoutMs', DEFAULTS.publishTimeoutMs, 100),
  };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (user !== '' && pass !== '') {
    options.user = user;
    options.pass = pass;
  } else if (user !== '') {
    options.token = user;
  }
  return options;
}

/**
 * The subject and JetStream stream of a Gantry stream: one JetStream stream per Gantry stream, holding exactly one
 * subject, so two streams never overlap and each keeps its own limits (a `.dlq` stream is a stream of its own).
 *
 * @example
 * natsNames('gantry', 'orders.placed'); // { subject: 'gantry.orders.placed', stream: 'GANTRY_orders_placed' }
 */
export function natsNames(prefix: string, stream: string): NatsNames {
  return { subject: `${prefix}.${stream}`, stream: `${prefix.toUpperCase()}_${escapeName(stream)}` };
}

/** The durable consumer name of a group (JetStream names allow neither `.` nor wildcards). */
export function natsDurableName(group: string): string {
  return escapeName(group);
}

/**
 * Writes a name with the characters JetStream names allow, one-to-one: `.` becomes `_`, `_` becomes `-_`, `-` becomes
 * `--`, any other character outside `[a-z0-9]` becomes `-` and four hex digits. No code is the start of another, so
 * two names never give the same result, and the common dotted name stays readable (`orders.placed` → `orders_placed`).
 */
function escapeName(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const char = name[i] as string;
    if ((char >= 'a' && char <= 'z') || (char >= '0' && char <= '9')) out += char;
    else if (char === '.') out += '_';
    else if (char === '_') out += '-_';
    else if (char === '-') out += '--';
    else out += `-${name.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return out;
}

function integer(query: URLSearchParams, key: string, fallback: number, min: number): number {
  const raw = query.get(key);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min)
    invalid(`${key} must be an integer of at least ${min}, not '${raw}'`);
  return value;
}

function oneOf<T extends string>(query: URLSearchParams, key: string, allowed: readonly T[], fallback: T): T {
  const raw = query.get(key);
  if (raw === null) return fallback;
  if (!(allowed as readonly string[]).includes(raw))
    invalid(`${key} must be one of ${allowed.join(', ')}, not '${raw}'`);
  return raw as T;
}

function invalid(message: string): never {
  throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `nats bus URL: ${message}`);
}
