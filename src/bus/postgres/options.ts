import { GantryError } from '../../errors/gantry-error.ts';

/** The schema the bus keeps its tables in when the URL names none. */
export const DEFAULT_BUS_SCHEMA = 'gantry_bus';

/**
 * The options of a PostgreSQL or PGlite bus, each read from the URL query string under the same name
 * (`postgres://host/db?claimTimeoutMs=10000&schema=orders_bus`). Numbers are milliseconds unless said otherwise.
 */
export interface PostgresBusOptions {
  /**
   * The PostgreSQL schema holding the bus tables, created on first use; also the LISTEN/NOTIFY channel. A lowercase
   * identifier (`[a-z_][a-z0-9_]*`, at most 63 characters). Default `gantry_bus`.
   */
  schema: string;
  /** How long a claimed message stays leased to its consumer before another consumer of the group may take it. Default 30000. */
  claimTimeoutMs: number;
  /**
   * How often an idle subscription looks for work without being woken: it finds retries scheduled by other consumers,
   * leases that ran out, and messages whose notification was missed (listener reconnecting). Default 1000.
   */
  pollIntervalMs: number;
  /** How long `publish` keeps retrying while the server cannot be reached before it rejects. 0 fails at once. Default 10000. */
  publishRetryMs: number;
  /** How long a message every group has acknowledged is kept before cleanup deletes it. Default 0. */
  retentionMs: number;
  /** How often this bus deletes messages every group has acknowledged. 0 turns the cleanup off. Default 60000. */
  cleanupIntervalMs: number;
  /** Connections in the pool (`postgres://` only; PGlite has one). Default 10. */
  poolSize: number;
  /**
   * `postgres://` only: set `?transactionPooling=true` when the URL points at a pooler in transaction mode
   * (PgBouncer, Supavisor, RDS Proxy), which keeps neither prepared statements nor session settings. The bus then
   * sends its statements unnamed and no planner settings (see `openPostgresBus`), so claims rely on the table
   * statistics for their plans. Default false.
   */
  transactionPooling: boolean;
}

/** What a bus URL names once the Gantry options are taken out of it. */
export interface ParsedPostgresBusUrl {
  options: PostgresBusOptions;
  /** The URL with the Gantry options removed, for the client library (`postgres:` only). */
  connectionString: string;
}

type NumericOption = Exclude<keyof PostgresBusOptions, 'schema' | 'transactionPooling'>;

const NUMERIC: readonly { name: NumericOption; fallback: number; min: number }[] = [
  { name: 'claimTimeoutMs', fallback: 30_000, min: 1 },
  { name: 'pollIntervalMs', fallback: 1_000, min: 1 },
  { name: 'publishRetryMs', fallback: 10_000, min: 0 },
  { name: 'retentionMs', fallback: 0, min: 0 },
  { name: 'cleanupIntervalMs', fallback: 60_000, min: 0 },
  { name: 'poolSize', fallback: 10, min: 1 },
];

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Fills the options a caller left out with their defaults and checks them.
 *
 * @throws GantryError `GANTRY_ERR_CONFIG_INVALID` for a schema that is not a plain lowercase identifier or a number
 *   out of range.
 */
export function postgresBusOptions(partial: Partial<PostgresBusOptions> = {}): PostgresBusOptions {
  const schema = partial.schema ?? DEFAULT_BUS_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `bus schema '${schema}' must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 characters)`,
    );
  }
  const options: PostgresBusOptions = { ...fallbacks(), ...partial, schema };
  for (const { name, min } of NUMERIC) {
    const value = options[name];
    if (!Number.isFinite(value) || value < min) {
      throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `bus option ${name} must be a number ≥ ${min}, got ${value}`);
    }
  }
  return options;
}

/**
 * Reads the bus options from a URL's query string and removes them, so the client library gets a connection string
 * it understands. Unknown query parameters are left for the client (`sslmode`, `application_name`, ...).
 *
 * @throws GantryError `GANTRY_ERR_CONFIG_INVALID` for a value that is not a number where one is expected.
 */
export function parsePostgresBusUrl(url: URL): ParsedPostgresBusUrl {
  const clean = new URL(url.href);
  const partial: Partial<PostgresBusOptions> = {};
  const schema = clean.searchParams.get('schema');
  if (schema !== null) partial.schema = schema;
  clean.searchParams.delete('schema');
  const pooling = clean.searchParams.get('transactionPooling');
  if (pooling !== null) {
    if (pooling !== 'true' && pooling !== 'false') {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `bus option transactionPooling must be true or false, got '${pooling}'`,
      );
    }
    partial.transactionPooling = pooling === 'true';
    clean.searchParams.delete('transactionPooling');
  }
  for (const { name } of NUMERIC) {
    const raw = clean.searchParams.get(name);
    if (raw === null) continue;
    const value = Number(raw);
    if (raw.trim() === '' || Number.isNaN(value)) {
      throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `bus option ${name} must be a number, got '${raw}'`);
    }
    partial[name] = value;
    clean.searchParams.delete(name);
  }
  return { options: postgresBusOptions(partial), connectionString: clean.href };
}

function fallbacks(): Omit<PostgresBusOptions, 'schema'> {
  const values = { transactionPooling: false } as Omit<PostgresBusOptions, 'schema'>;
  for (const { name, fallback } of NUMERIC) values[name] = fallback;
  return values;
}
