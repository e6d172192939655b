import { mkdir } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import type { DatabaseConnection } from '../connection.ts';
import { loadClient } from '../load-client.ts';
import { timeQueries } from '../query-spans.ts';
import { skipRepeatedTextParsers, textParsers } from './text-parsers.ts';

/** Options of {@link openPglite}. */
export interface PgliteOpenOptions<TSchema extends Record<string, unknown>> {
  /** The service's drizzle schema (tables, relations, enums). */
  schema: TSchema;
  /** Folder holding the database files (created when missing), or null for a database that lives in memory. */
  dataDir: string | null;
}

/**
 * Opens embedded PostgreSQL (PGlite, compiled to WebAssembly) in this process: no server to install, one database per
 * folder, or a throw-away one in memory.
 *
 * @remarks A PGlite folder must be opened by one process at a time; the host gives each service its own folder.
 * @example
 * const connection = await openPglite({ schema, dataDir: null });
 * await connection.check();
 */
export async function openPglite<TSchema extends Record<string, unknown>>(
  options: PgliteOpenOptions<TSchema>,
): Promise<DatabaseConnection<TSchema>> {
  const { PGlite } = await loadClient(() => import('@electric-sql/pglite'), '@electric-sql/pglite');
  // drizzle-orm/pglite imports @electric-sql/pglite at its top, so it is loaded only once PGlite is known to be there.
  const { drizzle } = await loadClient(() => import('drizzle-orm/pglite'), 'drizzle-orm');
  if (options.dataDir !== null) await mkdir(options.dataDir, { recursive: true });
  // Dates, times and intervals come back as text, as drizzle reads them: drizzle asks for that with every query, and
  // letting PGlite apply its parsers per query cost more than most statements (see text-parsers.ts).
  const parsers = textParsers();
  const client = await PGlite.create(options.dataDir === null ? { parsers } : { dataDir: options.dataDir, parsers });
  skipRepeatedTextParsers(client);
  // Queries run by event handlers become spans of their events, inside transactions too.
  timeQueries(client, 'query');
  timeQueries(client, 'exec');
  const transaction = client.transaction.bind(client);
  client.transaction = (work) =>
    transaction((tx) => {
      skipRepeatedTextParsers(tx);
      timeQueries(tx, 'query');
      timeQueries(tx, 'exec');
      return work(tx);
    });
  const db = drizzle({ client, schema: options.schema });
  let closing: Promise<void> | undefined;
  return {
    db,
    async check() {
      await db.execute(sql`select 1`);
    },
    close() {
      closing ??= client.closed ? Promise.resolve() : client.close();
      return closing;
    },
  };
}
