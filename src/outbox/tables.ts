import { sql } from 'drizzle-orm';
import type { DrizzleDatabase } from '../db/connection.ts';
import { migrationsTableFor } from '../db/migrator.ts';

/** Any drizzle database or transaction: the outbox and inbox only run raw SQL on it. */
export type SqlRunner = DrizzleDatabase<Record<string, unknown>>;

/** The schema of a service's own Gantry tables (the same one that records its migrations). */
export function gantrySchema(service: string): string {
  return migrationsTableFor(service).schema;
}

/**
 * Creates the outbox and inbox tables of a service if they are missing. Idempotent, and safe when several instances
 * start at once (an advisory lock keyed on the schema serialises the DDL).
 */
export async function ensureMessagingTables(db: SqlRunner, service: string): Promise<void> {
  const schema = sql.identifier(gantrySchema(service));
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`gantry-messaging:${gantrySchema(service)}`}))`);
    await tx.execute(sql`create schema if not exists ${schema}`);
    await tx.execute(sql`create table if not exists ${schema}.outbox (
      id bigserial primary key,
      stream text not null,
      envelope jsonb not null,
      idempotency_key text unique,
      created_at timestamptz not null default now(),
      sent_at timestamptz
    )`);
    await tx.execute(sql`create index if not exists outbox_unsent on ${schema}.outbox (id) where sent_at is null`);
    await tx.execute(sql`create table if not exists ${schema}.inbox (
      consumer_group text not null,
      message_id text not null,
      stream text not null,
      processed_at timestamptz not null default now(),
      primary key (consumer_group, message_id)
    )`);
  });
}
