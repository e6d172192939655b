import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { count, eq, sql } from 'drizzle-orm';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { database } from '../db/database.ts';
import { generateMigration } from '../db/migrations.ts';
import { t } from '../schema/index.ts';
import { service } from '../service/service.ts';
import { defineStream } from '../service/stream.ts';
import { startTestHost, type TestHost } from '../testing/index.ts';
import { gantrySchema } from './tables.ts';

const entries = pgTable('entries', { id: text('id').primaryKey(), amount: integer('amount').notNull() });
const effects = pgTable('effects', { messageId: text('message_id').notNull(), entryId: text('entry_id').notNull() });
const entryBooked = defineStream('ledger.booked', t.Object({ id: t.String(), amount: t.Integer() }));

describe('transactional outbox and inbox', () => {
  let app: TestHost;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-outbox-'));
    await generateMigration({ schema: { entries, effects }, dir, name: 'init' });
    const db = database({ schema: { entries, effects }, migrations: dir });
    const ledger = service({ name: 'ledger', version: '1.0.0', drivers: { db } })
      .emits(entryBooked)
      .post(
        '/entries',
        {
          body: t.Object({
            id: t.String(),
            amount: t.Integer(),
            fail: t.Optional(t.Boolean()),
            key: t.Optional(t.String()),
          }),
          response: { 201: null },
        },
        async ({ body }, ctx) => {
          await ctx.drivers.db.db.transaction(async (tx) => {
            await tx.insert(entries).values({ id: body.id, amount: body.amount });
            await ctx.emit(
              entryBooked,
              { id: body.id, amount: body.amount },
              { tx, ...(body.key ? { idempotencyKey: body.key } : {}) },
            );
            if (body.fail) throw new Error('rolled back after emit');
          });
          return undefined;
        },
      )
      .on(entryBooked, { group: 'effects', inbox: 'db' }, async (entry, ctx) => {
        await ctx.tx.insert(effects).values({ messageId: ctx.message.id, entryId: entry.id });
      });
    app = await startTestHost({ services: [ledger] });
  });
  afterAll(async () => app?.stop());

  const ledgerDb = () =>
    (
      app.host.runtime('ledger').clients.db as {
        db: import('../db/connection.ts').DrizzleDatabase<Record<string, unknown>>;
      }
    ).db;

  const effectRows = async (entryId: string) => {
    const [row] = await ledgerDb().select({ n: count() }).from(effects).where(eq(effects.entryId, entryId));
    return row?.n ?? 0;
  };

  it('publishes a message emitted in a transaction once it commits', async () => {
    expect((await app.request('POST', '/entries', { id: 'e1', amount: 5 })).status).toBe(201);
    await app.waitFor(() => app.emitted(entryBooked).some((e) => e.id === 'e1'), 'the relayed message');
    await app.waitFor(async () => (await effectRows('e1')) === 1, 'the consumer effect');
  });

  it('publishes nothing when the transaction rolls back', async () => {
    const res = await app.request('POST', '/entries', { id: 'e2', amount: 5, fail: true });
    expect(res.status).toBe(500);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(app.emitted(entryBooked).some((e) => e.id === 'e2')).toBe(false);
  });

  it('stores one message for one idempotency key', async () => {
    await app.request('POST', '/entries', { id: 'e3', amount: 1, key: 'booking-3' });
    await app.request('POST', '/entries', { id: 'e3b', amount: 1, key: 'booking-3' });
    await app.waitFor(() => app.emitted(entryBooked).some((e) => e.id === 'e3'), 'the first message');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(app.emitted(entryBooked).filter((e) => e.id === 'e3' || e.id === 'e3b')).toEqual([{ id: 'e3', amount: 1 }]);
  });

  it('keeps a sent message with an idempotency key, so a repeat after the relay is dropped too; drops one without', async () => {
    await app.request('POST', '/entries', { id: 'e4', amount: 2, key: 'booking-4' });
    await app.request('POST', '/entries', { id: 'e5', amount: 3 });
    await app.waitFor(
      () => app.emitted(entryBooked).filter((e) => e.id === 'e4' || e.id === 'e5').length === 2,
      'both messages relayed',
    );
    const outbox = async () => {
      const { rows } = await ledgerDb().execute<{ entry: string; sent: boolean }>(
        sql`select envelope->'data'->>'id' as entry, sent_at is not null as sent
            from ${sql.identifier(gantrySchema('ledger'))}.outbox where envelope->'data'->>'id' in ('e4', 'e4b', 'e5')`,
      );
      return rows;
    };
    await app.waitFor(async () => (await outbox()).length === 1, 'the unkeyed row gone once sent');
    expect(await outbox()).toEqual([{ entry: 'e4', sent: true }]);

    await app.request('POST', '/entries', { id: 'e4b', amount: 2, key: 'booking-4' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(app.emitted(entryBooked).filter((e) => e.id === 'e4' || e.id === 'e4b')).toEqual([{ id: 'e4', amount: 2 }]);
    expect(await outbox()).toEqual([{ entry: 'e4', sent: true }]);
  });

  it('runs an inbox consumer once per message id, however often the message is delivered', async () => {
    const [original] = app.envelopes('ledger.booked').filter((e) => (e.data as { id: string }).id === 'e1');
    expect(original).toBeDefined();
    for (let i = 0; i < 3; i++)
      await app.host.messageBus.publish('ledger.booked', original as NonNullable<typeof original>);
    await app.waitFor(
      () => app.logs.lines.filter((l) => l.msg === 'IGNORED: already processed').length >= 3,
      'three redeliveries ignored',
    );
    expect(await effectRows('e1')).toBe(1);
  });
});
