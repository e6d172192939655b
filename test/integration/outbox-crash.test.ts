// The transactional outbox across a crash: a producer process commits N rows, each with its message in the outbox,
// and is SIGKILLed before its relay published any of them; a restarted producer must relay every one of them, and a
// consumer must get each message exactly once (counted by envelope id). Real PostgreSQL, real Redis Streams.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Subscription } from '../../src/bus/bus.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { waitFor } from '../../src/testing/index.ts';
import { type FixtureProcess, killFixture, startFixture } from '../support/durability.ts';
import { deleteKeysUnder } from '../support/redis-keys.ts';

const MESSAGES = 200;
const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS = process.env.GANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const id = randomBytes(4).toString('hex');
const databaseName = `gantry_outbox_crash_${id}`;
const databaseUrl = `postgres://postgres@127.0.0.1:5432/${databaseName}`;
const prefix = `gantry-it-outbox-${id}:`;
const busUrl = `${REDIS}?prefix=${encodeURIComponent(prefix)}`;
const stream = `outbox.crash${id}`;
const table = `items_${id}`;
const env = { GANTRY_BUS: busUrl, DATABASE_URL: databaseUrl, OUTBOX_STREAM: stream, OUTBOX_TABLE: table, PORT: '0' };

let admin: pg.Client;
let db: pg.Client;
let redis: Redis;
let bus: Bus | undefined;
let subscription: Subscription | undefined;
const producers: FixtureProcess[] = [];
/** Deliveries seen by the checking consumer, by envelope id. */
const deliveries = new Map<string, number>();
const numbers = new Map<string, number>();

beforeAll(async () => {
  admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`create database ${databaseName}`);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  redis = new Redis(REDIS, { maxRetriesPerRequest: 1 });
  expect(await redis.ping()).toBe('PONG');
  // The checking consumer's group exists before anything is published, so it must see every message.
  bus = await resolveBus(busUrl, { instanceId: `outbox-crash-${id}` });
  subscription = await bus.subscribe(
    stream,
    'crash-check',
    async (delivery) => {
      const envelope = delivery.envelope;
      if (envelope) {
        deliveries.set(envelope.id, (deliveries.get(envelope.id) ?? 0) + 1);
        numbers.set(envelope.id, (envelope.data as { n: number }).n);
      }
      await delivery.ack();
    },
    { concurrency: 16, consumerName: 'checker' },
  );
});

afterAll(async () => {
  await Promise.allSettled(producers.map((p) => killFixture(p)));
  await subscription?.stop().catch(() => undefined);
  await bus?.close().catch(() => undefined);
  await db?.end().catch(() => undefined);
  await admin?.query(`drop database if exists ${databaseName} with (force)`).catch(() => undefined);
  await admin?.end().catch(() => undefined);
  if (redis) {
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
  }
});

const outboxRows = async (): Promise<{ total: number; unsent: number; ids: string[] }> => {
  const { rows } = await db.query<{ id: string; sent: boolean }>(
    `select envelope->>'id' as id, sent_at is not null as sent from gantry_outboxcrash.outbox`,
  );
  return { total: rows.length, unsent: rows.filter((r) => !r.sent).length, ids: rows.map((r) => r.id) };
};

describe('transactional outbox across a SIGKILL between commit and relay', () => {
  it(`delivers each of ${MESSAGES} committed messages exactly once after a restart`, async () => {
    // First life: the relay is held (test-only hold), so every commit lands in the outbox and nothing is relayed.
    const first = await startFixture('outbox-producer', { ...env, GANTRY_OUTBOX_RELAY_HOLD_MS: '600000' });
    producers.push(first);
    const address = first.readyLine.split(' ')[1] as string;
    for (let from = 0; from < MESSAGES; from += 20) {
      const statuses = await Promise.all(
        Array.from({ length: Math.min(20, MESSAGES - from) }, (_, i) =>
          fetch(`${address}/items`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ n: from + i }),
          }).then((r) => r.status),
        ),
      );
      expect(statuses.every((s) => s === 201)).toBe(true);
    }
    // The window: rows and messages are committed, none has been relayed.
    const { rows: items } = await db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    expect(items[0]?.n).toBe(MESSAGES);
    const before = await outboxRows();
    expect(before).toMatchObject({ total: MESSAGES, unsent: MESSAGES });
    expect(new Set(before.ids).size).toBe(MESSAGES);
    expect(deliveries.size).toBe(0);

    await killFixture(first);

    // Second life, normal settings: the relay must publish what the first one left behind.
    producers.push(await startFixture('outbox-producer', { ...env, GANTRY_OUTBOX_RELAY_HOLD_MS: '0' }));
    await waitFor(async () => (await outboxRows()).unsent === 0, 'the outbox relayed after the restart', 60_000);
    await waitFor(() => deliveries.size >= MESSAGES, `${MESSAGES} distinct messages delivered`, 60_000);
    // A duplicate would come right behind its original; give one a moment to land before counting.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    expect([...deliveries.keys()].sort()).toEqual([...before.ids].sort());
    expect([...deliveries.values()].filter((count) => count !== 1)).toEqual([]);
    expect(new Set(numbers.values())).toEqual(new Set(Array.from({ length: MESSAGES }, (_, n) => n)));
  });
});
