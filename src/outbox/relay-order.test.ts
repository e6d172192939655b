import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { describe, expect, it } from 'vitest';
import type { Bus } from '../bus/bus.ts';
import { createEnvelope, type Envelope } from '../bus/envelope.ts';
import { MemoryBus } from '../bus/memory/index.ts';
import { createLogger } from '../log/logger.ts';
import { enqueueInOutbox, OutboxRelay } from './outbox.ts';
import { ensureMessagingTables, type SqlRunner } from './tables.ts';

/** The real in-memory bus, refusing the publishes of the message ids in `refused` (a broker saying no). */
function refusingBus(bus: MemoryBus, refused: Set<string>, published: Envelope[]): Bus {
  return new Proxy(bus, {
    get(target, name, receiver) {
      if (name !== 'publish') return Reflect.get(target, name, receiver);
      return async (stream: string, envelope: Envelope) => {
        if (refused.has(envelope.id)) throw new Error(`refused ${envelope.id}`);
        await target.publish(stream, envelope);
        published.push(envelope);
      };
    },
  });
}

describe('the outbox relay', () => {
  it('publishes a batch at once but in order per key, and never lets a row overtake a failed one of its key', async () => {
    const client = new PGlite();
    const db = drizzle(client) as unknown as SqlRunner;
    await ensureMessagingTables(db, 'orders');
    const message = (key: string | undefined, n: number) =>
      createEnvelope({ stream: 'orders.placed', data: { n }, source: 'orders@1.0.0', ...(key ? { key } : {}) });
    const a1 = message('a', 1);
    const b1 = message('b', 2);
    const a2 = message('a', 3);
    const loose = message(undefined, 4);
    const b2 = message('b', 5);
    for (const envelope of [a1, b1, a2, loose, b2]) await enqueueInOutbox(db, 'orders', envelope);
    const refused = new Set([a1.id]);
    const published: Envelope[] = [];
    const memory = new MemoryBus();
    const relay = new OutboxRelay({
      db,
      service: 'orders',
      bus: refusingBus(memory, refused, published),
      log: createLogger({ env: 'test', level: 'silent' }),
    });

    await expect(relay.relayOnce()).rejects.toThrow(`refused ${a1.id}`);
    // a2 waited for a1 and was not sent; the other keys and the keyless row went out, b1 before b2.
    expect(published.map((envelope) => envelope.id)).toEqual(expect.arrayContaining([b1.id, loose.id, b2.id]));
    expect(published).toHaveLength(3);
    expect(published.findIndex((e) => e.id === b1.id)).toBeLessThan(published.findIndex((e) => e.id === b2.id));

    refused.clear();
    expect(await relay.relayOnce()).toBe(2);
    expect(published.slice(3).map((envelope) => envelope.id)).toEqual([a1.id, a2.id]);
    expect(await relay.relayOnce()).toBe(0);
    await memory.close();
    await client.close();
  });

  it('gathers the rows of commits that come close together into one batch, and still relays every row', async () => {
    const client = new PGlite();
    const db = drizzle(client) as unknown as SqlRunner;
    await ensureMessagingTables(db, 'orders');
    const memory = new MemoryBus();
    const published: Envelope[] = [];
    let batches = 0;
    const relay = new (class extends OutboxRelay {
      override relayOnce(): Promise<number> {
        batches++;
        return super.relayOnce();
      }
    })({
      db,
      service: 'orders',
      bus: refusingBus(memory, new Set(), published),
      log: createLogger({ env: 'test', level: 'silent' }),
      pollMs: 60_000,
      gatherMs: 40,
    });
    relay.start();
    // 40 commits, a millisecond or more apart, each nudging the relay as the host does after a commit.
    for (let n = 0; n < 40; n++) {
      await enqueueInOutbox(db, 'orders', createEnvelope({ stream: 'orders.placed', data: { n }, source: 'orders@1' }));
      relay.nudge();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await expect.poll(() => published.length, { timeout: 5_000 }).toBe(40);
    // One batch at start, then at most one per 40 ms of the loop above: far fewer than one per commit.
    expect(batches).toBeLessThan(20);
    await relay.stop();
    await memory.close();
    await client.close();
  });

  it('deletes the rows it sent, keeps those with an idempotency key marked sent, and keeps all with keepSent', async () => {
    const client = new PGlite();
    const db = drizzle(client) as unknown as SqlRunner;
    await ensureMessagingTables(db, 'orders');
    const memory = new MemoryBus();
    const log = createLogger({ env: 'test', level: 'silent' });
    const table = async () => {
      const { rows } = await db.execute<{ n: number; sent: boolean }>(
        sql`select (envelope->'data'->>'n')::int as n, sent_at is not null as sent from gantry_orders.outbox order by id`,
      );
      return rows.map((row) => ({ n: row.n, sent: row.sent }));
    };
    const enqueue = async (n: number, idempotencyKey?: string) =>
      enqueueInOutbox(
        db,
        'orders',
        createEnvelope({
          stream: 'orders.placed',
          data: { n },
          source: 'orders@1.0.0',
          ...(idempotencyKey ? { idempotencyKey } : {}),
        }),
      );

    await enqueue(1);
    await enqueue(2, 'order-2');
    expect(await new OutboxRelay({ db, service: 'orders', bus: memory, log }).relayOnce()).toBe(2);
    expect(await table()).toEqual([{ n: 2, sent: true }]);
    // The kept row still drops a repeat of its key.
    expect(await enqueue(3, 'order-2')).toBe(false);

    await enqueue(4);
    expect(await new OutboxRelay({ db, service: 'orders', bus: memory, log, keepSent: true }).relayOnce()).toBe(1);
    expect(await table()).toEqual([
      { n: 2, sent: true },
      { n: 4, sent: true },
    ]);
    await memory.close();
    await client.close();
  });
});
