import { createHash } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { bigint, pgSchema, serial, text, timestamp } from 'drizzle-orm/pg-core';
import type { DrizzleDatabase } from './connection.ts';
import type { MigrationFile } from './migrations.ts';

/** The name of the table recording applied migrations, in each service's own schema. */
export const MIGRATIONS_TABLE = '__gantry_migrations';

/** Where one service records its applied migrations. */
export interface MigrationsTable {
  /** `gantry_<service>`: the service name lower-cased, anything but letters, digits and `_` turned into `_`. */
  schema: string;
  /** Always {@link MIGRATIONS_TABLE}. */
  table: string;
}

/** A migration not yet applied to the database, for review before {@link applyMigrations} runs it. */
export interface PendingMigration {
  /** The journal tag, e.g. `0001_add_orders`. */
  name: string;
  /** The statements it will run, in order. */
  sql: string[];
}

/** PostgreSQL truncates longer identifiers, which would let two long service names share a table silently. */
const MAX_IDENTIFIER_LENGTH = 63;

/**
 * Names the schema and table where `service` records its migrations. A database may be shared by several services; each
 * keeps its own record in its own schema, beside the tables it creates, so one service's migrations never hide
 * another's, and `drop schema gantry_<service> cascade` forgets them.
 *
 * @example
 * migrationsTableFor('orders-api'); // { schema: 'gantry_orders_api', table: '__gantry_migrations' }
 */
export function migrationsTableFor(service: string): MigrationsTable {
  const slug = service.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const schema = `gantry_${slug}`.slice(0, MAX_IDENTIFIER_LENGTH);
  return { schema, table: MIGRATIONS_TABLE };
}

/**
 * Lists the migrations of `files` the database has not recorded, in journal order.
 *
 * @remarks A migration counts as applied when a row carries its journal `when` as `created_at`. drizzle-orm's own
 * migrator instead applies only migrations newer than the newest row, silently skipping one generated on a branch
 * before another that was applied first; matching each one is what lets `pending()` list such a migration.
 */
export async function listPendingMigrations(
  db: DrizzleDatabase<Record<string, unknown>>,
  location: MigrationsTable,
  files: readonly MigrationFile[],
): Promise<PendingMigration[]> {
  // Looking before reading keeps this call free of side effects: it creates nothing, and works with read-only rights.
  const tables = informationSchemaTables();
  const found = await db
    .select({ name: tables.tableName })
    .from(tables)
    .where(and(eq(tables.tableSchema, location.schema), eq(tables.tableName, location.table)));
  const applied = found.length === 0 ? new Set<number>() : await appliedTimes(db, location);
  return files.filter((file) => !applied.has(file.when)).map(({ name, sql }) => ({ name, sql }));
}

/**
 * Applies the migrations of `files` the database has not recorded, in journal order, and returns their names.
 *
 * All of them run in one transaction: either every pending migration is applied and recorded, or none is. The
 * transaction first takes a PostgreSQL advisory lock named after the migrations table, so when several processes (the
 * replicas of a deploy) migrate at once, one applies and the others wait, then find nothing left to do. Statements that
 * PostgreSQL refuses inside a transaction (`create index concurrently`) cannot be used in a migration.
 */
export async function applyMigrations(
  db: DrizzleDatabase<Record<string, unknown>>,
  location: MigrationsTable,
  files: readonly MigrationFile[],
): Promise<string[]> {
  const table = migrationsTableOf(location);
  return db.transaction(
    async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${advisoryLockKey(location)}::bigint)`);
      // Created under the lock: two processes racing on `create schema if not exists` can otherwise both try to insert
      // it, and one fails with a duplicate key.
      await tx.execute(sql`create schema if not exists ${sql.identifier(location.schema)}`);
      await tx.execute(sql`
        create table if not exists ${sql.identifier(location.schema)}.${sql.identifier(location.table)} (
          id serial primary key,
          hash text not null,
          created_at bigint,
          name text,
          applied_at timestamptz not null default now()
        )`);
      const applied = await appliedTimes(tx, location);
      const names: string[] = [];
      for (const file of files) {
        if (applied.has(file.when)) continue;
        for (const statement of file.sql) await tx.execute(sql.raw(statement));
        await tx.insert(table).values({ hash: file.hash, createdAt: file.when, name: file.name });
        names.push(file.name);
      }
      return names;
    },
    // Read committed takes a fresh snapshot per statement, so the rows read after the lock include those of the process
    // that held it. Under a stricter default isolation the snapshot would predate the wait and apply everything again.
    { isolationLevel: 'read committed' },
  );
}

async function appliedTimes(db: DrizzleDatabase<Record<string, unknown>>, location: MigrationsTable) {
  const table = migrationsTableOf(location);
  const rows = await db.select({ createdAt: table.createdAt }).from(table);
  return new Set(rows.map((row) => row.createdAt));
}

/**
 * The migrations table as drizzle sees it. Its first three columns are those of drizzle-orm's migrator, which can
 * therefore read and extend the record (`migrationsSchema`/`migrationsTable` options); `name` and `applied_at` are for
 * people reading the table.
 */
function migrationsTableOf(location: MigrationsTable) {
  return pgSchema(location.schema).table(location.table, {
    id: serial('id').primaryKey(),
    hash: text('hash').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }),
    name: text('name'),
    appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
  });
}

function informationSchemaTables() {
  return pgSchema('information_schema').table('tables', {
    tableSchema: text('table_schema').notNull(),
    tableName: text('table_name').notNull(),
  });
}

/** A 64-bit advisory lock key derived from the migrations table, so services sharing a database never wait on each other. */
function advisoryLockKey(location: MigrationsTable): string {
  const digest = createHash('sha256').update(`gantry:migrations:${location.schema}.${location.table}`).digest();
  return digest.readBigInt64BE(0).toString();
}
