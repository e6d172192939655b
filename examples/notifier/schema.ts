import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** The notifications sent, one row each: written in the same transaction as the inbox record. */
export const sentNotifications = pgTable('sent_notifications', {
  notificationId: uuid('notification_id').primaryKey(),
  kind: text('kind').notNull(),
  customerId: uuid('customer_id').notNull(),
  recipients: text('recipients').notNull(),
  subject: text('subject').notNull(),
  sentAt: timestamp('sent_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
