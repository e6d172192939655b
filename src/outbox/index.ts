export { claimInInbox } from './inbox.ts';
export { enqueueInOutbox, OutboxRelay, type OutboxRelayOptions } from './outbox.ts';
export { ensureMessagingTables, gantrySchema, type SqlRunner } from './tables.ts';
