import { isNull, sql } from 'drizzle-orm';
import { integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * The customers table. Emails are stored lower-cased; they are unique among customers not deleted. Deletes are soft
 * (`deleted_at`), so a deleted customer's last version stays known to replicas.
 */
export const customers = pgTable(
  'customers',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    name: text('name').notNull(),
    email: text('email').notNull(),
    /** Grows by one on every change, the delete included; replicas apply a change only when its version is newer. */
    version: integer('version').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [uniqueIndex('customers_live_email_key').on(table.email).where(isNull(table.deletedAt))],
);

/** A row of {@link customers}. */
export type CustomerRow = typeof customers.$inferSelect;
