import { sql } from 'drizzle-orm';
import type { Logger } from '../../log/logger.ts';
import type { DatabaseConnection } from '../connection.ts';
import { loadClient } from '../load-client.ts';
import { timeQueries } from '../query-spans.ts';

/** Options of {@link openNodePostgres}. */
export interface NodePostgresOpenOptions<TSchema extends Record<string, unknown>> {
  /** The service's drizzle schema (tables, relations, enums). */
  schema: TSchema;
  /** A `postgres://` or `postgresql://` connection string. */
  url: string;
  /** Most connections the pool keeps open at once. */
  poolSize: number;
  /** Where errors of idle pooled connections are reported. */
  log: Logger;
}

/**
 * Opens a pool of node-postgres connections to a PostgreSQL server. Connections are made on first use, so opening
 * succeeds even while the server is down; {@link DatabaseConnection.check} tells whether it answers.
 *
 * @example
 * const connection = await openNodePostgres({ schema, url: 'postgres://localhost/app', poolSize: 10, log });
 */
export async function openNodePostgres<TSchema extends Record<string, unknown>>(
  options: NodePostgresOpenOptions<TSchema>,
): Promise<DatabaseConnection<TSchema>> {
  const { Pool } = await loadClient(() => import('pg'), 'pg');
  // drizzle-orm/node-postgres imports pg at its top, so it is loaded only once pg is known to be there.
  const { drizzle } = await loadClient(() => import('drizzle-orm/node-postgres'), 'drizzle-orm');
  const pool = new Pool({ connectionString: options.url, max: options.poolSize });
  // An idle connection dropped by the server (restart, failover) is reported on the pool; without a listener Node treats
  // it as an unhandled 'error' event and exits. The pool replaces the connection on next use, so a warning is enough.
  pool.on('error', (error) => {
    // pg-pool hangs the whole client on the error (`err.client`): logged as it comes, each such line would carry the
    // client's connection state, buffers and queues. The message, code and stack say what happened.
    Reflect.deleteProperty(error, 'client');
    options.log.warn({ err: error }, 'idle PostgreSQL connection failed');
  });
  // Queries run by event handlers become spans of their events: the pool's own (it runs them on a connection through a
  // callback, not timed again), and those of the connections it hands out (transactions), each connection's once.
  timeQueries(pool, 'query');
  pool.on('connect', (client) => timeQueries(client, 'query'));
  const db = drizzle({ client: pool, schema: options.schema });
  let closing: Promise<void> | undefined;
  return {
    db,
    async check() {
      await db.execute(sql`select 1`);
    },
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
