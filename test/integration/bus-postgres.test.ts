import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.ts';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { busStatements, openPostgresBus, type PostgresLogBus } from '../../src/bus/postgres/index.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';
import { startPostgresBroker } from './brokers/postgres.ts';

const url = process.env.GANTRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// A schema of its own per run, so parallel runs (and leftovers of a crashed one) never meet; dropped at the end.
const run = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const schema = `gantry_bus_test_${run}`;
const raceSchema = `gantry_bus_race_${run}`;

let admin: pg.Pool;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: url, max: 2 });
  // Fails the whole file, rather than skipping it, when no server answers.
  await admin.query('SELECT 1');
});

afterAll(async () => {
  for (const name of [schema, raceSchema]) await admin.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  await admin.end();
});

/** Writes a row no Gantry producer would: no CloudEvents headers, a body that is not JSON. */
async function injectRaw(stream: string, body: string): Promise<void> {
  // PostgreSQL text cannot hold NUL, so a foreign producer's NUL arrives as U+FFFD; the bytes stay garbage.
  const text = body.replaceAll('\u0000', '\uFFFD');
  await admin.query(busStatements(schema).publish, [
    [stream],
    [null],
    ['{"content-type":"text/plain"}'],
    [text],
    schema,
  ]);
}

runBusConformance({
  name: 'postgres',
  create: () =>
    resolveBus(`${url}?schema=${schema}&claimTimeoutMs=800&pollIntervalMs=200`, { instanceId: 'conformance' }),
  claimTimeoutMs: 800,
  injectRaw,
});

describe('postgres bus on a PostgreSQL server', () => {
  it('creates its tables once when many processes start together', async () => {
    const buses = await Promise.all(
      Array.from({ length: 6 }, () => resolveBus(`${url}?schema=${raceSchema}`, { instanceId: 'race' })),
    );
    try {
      const stats = await Promise.all(buses.map((bus) => bus.stats('race', 'g')));
      expect(stats.map((s) => s.lag)).toEqual([0, 0, 0, 0, 0, 0]);
      const { rows } = await admin.query<{ n: number }>(
        'SELECT count(*)::integer AS n FROM information_schema.tables WHERE table_schema = $1',
        [raceSchema],
      );
      expect(rows[0]?.n).toBe(3);
    } finally {
      await Promise.all(buses.map((bus) => bus.close()));
    }
  });

  it('reports a server that does not answer as not ready', async () => {
    const bus = await resolveBus('postgres://postgres@127.0.0.1:1/none', { instanceId: 'down' });
    const check = await bus.check();
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/ECONNREFUSED/);
    await bus.close();
  });

  it('loses nothing when the server restarts while messages flow, reconnecting by itself', async () => {
    const broker = await startPostgresBroker();
    const buses: Bus[] = [];
    try {
      // publishRetryMs covers the outage: publish retries on its own, so the test does not have to.
      const options = '?claimTimeoutMs=2000&pollIntervalMs=200&publishRetryMs=30000';
      const producer = await openPostgresBus(new URL(broker.url + options));
      const consumer: PostgresLogBus = await openPostgresBus(new URL(broker.url + options));
      buses.push(producer, consumer);
      const stream = `restart.${run}`;
      const handled = new Set<number>();
      let deliveries = 0;
      const sub = await consumer.subscribe(
        stream,
        'g',
        async (d) => {
          deliveries++;
          const data = d.envelope?.data as { n: number } | undefined;
          if (data) handled.add(data.n);
          await d.ack();
        },
        { concurrency: 20, consumerName: 'c1' },
      );
      const total = 2_000;
      let published = 0;
      const publishing = (async () => {
        for (let n = 0; n < total; n += 20) {
          await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              producer.publish(stream, createEnvelope({ stream, data: { n: n + i }, source: 'test@1.0.0' })),
            ),
          );
          published += 20;
        }
      })();
      await waitFor(() => published >= total / 2, 'half of the messages to be published', 60_000);
      await broker.stop();
      // The outage must fall in the middle of the flow for the test to prove anything.
      expect(handled.size).toBeLessThan(total);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await broker.start();
      await publishing;
      await waitFor(() => handled.size === total, `all ${total} messages to be handled`, 60_000);
      expect(deliveries).toBeGreaterThanOrEqual(total);
      expect(await consumer.check()).toEqual({ ok: true });
      await waitFor(async () => (await consumer.stats(stream, 'g')).lag === 0, 'the lag to drain', 30_000);
      await sub.stop();
    } finally {
      for (const bus of buses) await bus.close().catch(() => undefined);
      await broker.remove();
    }
  }, 180_000);
});
