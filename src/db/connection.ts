import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';

/** What `db.execute` resolves to on every backend: the rows, typed as asked. */
export interface DatabaseQueryResult<TRow> {
  rows: TRow[];
}

/**
 * The result kind of `db.execute(sql...)` as both backends return it: PGlite's `Results` and node-postgres' `QueryResult`
 * each carry the rows in `rows`. Typing that shared part (drizzle's base type says `unknown`) lets raw SQL read its rows
 * without a cast, whichever backend answered.
 */
export interface DatabaseQueryResultHKT extends PgQueryResultHKT {
  /** The result for the row type drizzle substitutes into `row` (`db.execute<Row>(...)` gives `{ rows: Row[] }`). */
  type: DatabaseQueryResult<this['row']>;
}

/**
 * The drizzle database every backend hands out. Both backends speak PostgreSQL through drizzle's pg-core, so handlers
 * are typed once and run unchanged on embedded PGlite and on a PostgreSQL server.
 *
 * @example
 * const { rows } = await db.execute<{ id: number }>(sql`select id from orders for update skip locked limit 1`);
 */
export type DrizzleDatabase<TSchema extends Record<string, unknown>> = PgDatabase<DatabaseQueryResultHKT, TSchema>;

/**
 * An open connection to one database backend: what each folder under `src/db/` (`pglite/`, `node-postgres/`) returns
 * from its `driver.ts`, and all the database driver needs from a backend.
 *
 * @remarks Migrations, the backend choice and error codes for bad URLs live above this contract, in `database.ts`, so a
 * backend only knows how to connect, answer and let go. Pooling and reconnection are each backend's own business.
 */
export interface DatabaseConnection<TSchema extends Record<string, unknown>> {
  /** The drizzle database, built with the service's schema so relational queries (`db.query.*`) are typed. */
  db: DrizzleDatabase<TSchema>;
  /** Resolves when the database answers `select 1`; rejects with the backend's error otherwise. */
  check(): Promise<void>;
  /**
   * Ends the pool or closes the embedded database. Safe to call more than once: later calls resolve at once. Queries
   * started after the first call fail.
   */
  close(): Promise<void>;
}
