import type { PGlite } from '@electric-sql/pglite';
import type { Client, Pool } from 'pg';

/** Runs one SQL statement with `$n` parameters: what both `pg.Pool` and `PGlite` already offer. */
export interface PostgresQueryable {
  query<Row>(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
}

/**
 * The little the bus needs from a PostgreSQL connection, met by a node-postgres pool ({@link pgPoolBusClient}) and
 * by embedded PGlite ({@link pgliteBusClient}), so `PostgresLogBus` is written once for both.
 */
export interface PostgresBusClient extends PostgresQueryable {
  /** True when the database lives in this process (PGlite). */
  readonly embedded: boolean;
  /**
   * Runs several statements without parameters in one simple-protocol query, which PostgreSQL runs as one implicit
   * transaction.
   */
  exec(script: string): Promise<void>;
  /**
   * Calls `onNotify` with the payload of every NOTIFY on `channel`, and with `null` when notifications may have been
   * missed (the listening connection was lost and is back). Resolves to a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string | null) => void): Promise<() => Promise<void>>;
  /** Releases the connections (or the embedded database, when this client owns it). */
  close(): Promise<void>;
}

/** Options of {@link pgPoolBusClient}. */
export interface PgPoolBusClientOptions {
  /** Opens the dedicated connection LISTEN needs (a pooled one would be handed to other queries). */
  connectListener: () => Client;
  /** Ends the pool on close; false when the caller shares its pool and ends it itself. Default true. */
  ownsPool?: boolean;
  /** Told about errors of idle connections and of the listener, which have no caller to reject. */
  onError?: (error: Error) => void;
  /**
   * Names the statements that take parameters, so each connection parses and plans them once. Off behind a pooler
   * that does not keep prepared statements. Default true.
   */
  namedStatements?: boolean;
}

const LISTEN_RETRY_MIN_MS = 100;
const LISTEN_RETRY_MAX_MS = 5_000;

/**
 * A bus client over a node-postgres pool. The listener keeps its own connection and reconnects by itself with a
 * growing delay (0.1 s to 5 s), calling `onNotify(null)` once it is back so subscribers look for what they missed.
 */
export function pgPoolBusClient(pool: Pool, options: PgPoolBusClientOptions): PostgresBusClient {
  const onError = options.onError ?? (() => undefined);
  // Without a listener an idle connection dropped by the server (restart, failover) would crash the process.
  pool.on('error', onError);
  const stops = new Set<() => Promise<void>>();
  // The bus runs a handful of fixed statements over and over: naming them makes each connection parse them once,
  // and with generic plans (see openPostgresBus) plan them once too.
  const names = new Map<string, string>();
  const named = options.namedStatements !== false;
  return {
    embedded: false,
    async query<Row>(text: string, values?: unknown[]) {
      let name = names.get(text);
      if (name === undefined && values !== undefined && named) {
        name = `gantry_bus_${names.size + 1}`;
        names.set(text, name);
      }
      const result = await pool.query(name === undefined ? { text } : { name, text, values });
      return { rows: result.rows as Row[] };
    },
    async exec(script) {
      await pool.query(script);
    },
    async listen(channel, onNotify) {
      let stopped = false;
      let client: Client | undefined;
      let delay = LISTEN_RETRY_MIN_MS;
      let timer: NodeJS.Timeout | undefined;
      const connect = async (): Promise<void> => {
        const candidate = options.connectListener();
        candidate.on('notification', (message) => {
          if (message.channel === channel) onNotify(message.payload ?? '');
        });
        candidate.on('error', (error) => {
          onError(error);
          lost(candidate);
        });
        candidate.on('end', () => lost(candidate));
        try {
          await candidate.connect();
          await candidate.query(`LISTEN "${channel}"`);
        } catch (error) {
          candidate.removeAllListeners('end');
          await candidate.end().catch(() => undefined);
          throw error;
        }
        if (stopped) {
          await candidate.end().catch(() => undefined);
          return;
        }
        client = candidate;
        delay = LISTEN_RETRY_MIN_MS;
      };
      const lost = (which: Client): void => {
        if (client !== which || stopped) return;
        client = undefined;
        which.end().catch(() => undefined);
        reconnect();
      };
      const reconnect = (): void => {
        if (stopped || timer) return;
        timer = setTimeout(() => {
          timer = undefined;
          connect().then(
            () => onNotify(null),
            (error: Error) => {
              onError(error);
              delay = Math.min(LISTEN_RETRY_MAX_MS, delay * 2);
              reconnect();
            },
          );
        }, delay);
      };
      try {
        await connect();
      } catch (error) {
        // The polling fallback delivers meanwhile; the listener keeps trying in the background.
        onError(error as Error);
        reconnect();
      }
      const stop = async (): Promise<void> => {
        stopped = true;
        stops.delete(stop);
        if (timer) clearTimeout(timer);
        const current = client;
        client = undefined;
        if (current) await current.end().catch(() => undefined);
      };
      stops.add(stop);
      return stop;
    },
    async close() {
      await Promise.all([...stops].map((stop) => stop()));
      if (options.ownsPool !== false) await pool.end();
    },
  };
}

/** Options of {@link pgliteBusClient}. */
export interface PgliteBusClientOptions {
  /**
   * Closes the database on close. False to share one PGlite between several buses (or with the service's own
   * database): each is then a separate client of the same database, as processes are of a server. Default true.
   */
  ownsDatabase?: boolean;
}

/**
 * A bus client over embedded PGlite. PGlite is one PostgreSQL session running one statement at a time; its LISTEN
 * works within the process, which is where every client of a PGlite database lives, so notifications are as good as
 * on a server.
 */
export function pgliteBusClient(db: PGlite, options: PgliteBusClientOptions = {}): PostgresBusClient {
  const stops = new Set<() => Promise<void>>();
  return {
    embedded: true,
    async query<Row>(text: string, values?: unknown[]) {
      const result = await db.query<Row>(text, values);
      return { rows: result.rows };
    },
    async exec(script) {
      await db.exec(script);
    },
    async listen(channel, onNotify) {
      const unlisten = await db.listen(channel, (payload) => onNotify(payload));
      const stop = async (): Promise<void> => {
        stops.delete(stop);
        if (!db.closed) await unlisten();
      };
      stops.add(stop);
      return stop;
    },
    async close() {
      await Promise.all([...stops].map((stop) => stop()));
      if (options.ownsDatabase !== false && !db.closed) await db.close();
    },
  };
}
