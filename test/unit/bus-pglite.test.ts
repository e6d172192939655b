import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { decodeRow, encodeRow } from '../../src/bus/postgres/codec.ts';
import {
  BUS_PLANNER_SETTINGS,
  busStatements,
  PostgresLogBus,
  parsePostgresBusUrl,
  pgliteBusClient,
  postgresPublishStatement,
} from '../../src/bus/postgres/index.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';

// One PGlite database stands for the server: every bus the suite opens is a separate client of it that leaves it
// open on close, as processes share a server.
const database = new PGlite();
const schema = 'gantry_bus';

beforeAll(async () => {
  // As openPgliteBus does for a database of its own. The first statement waits for PGlite to start: seconds.
  await database.exec(BUS_PLANNER_SETTINGS.map((setting) => `SET ${setting};`).join(' '));
}, 60_000);

afterAll(async () => {
  await database.close();
});

function client(): PostgresLogBus {
  return new PostgresLogBus(pgliteBusClient(database, { ownsDatabase: false }), {
    schema,
    claimTimeoutMs: 800,
    pollIntervalMs: 200,
  });
}

/** Writes a row no Gantry producer would: no CloudEvents headers, a body that is not JSON. */
async function injectRaw(stream: string, body: string): Promise<void> {
  // PostgreSQL text cannot hold NUL, so a foreign producer's NUL arrives as U+FFFD; the bytes stay garbage.
  const text = body.replaceAll('\u0000', '\uFFFD');
  await database.query(busStatements(schema).publish, [
    [stream],
    [null],
    ['{"content-type":"text/plain"}'],
    [text],
    schema,
  ]);
}

runBusConformance({ name: 'pglite', create: async () => client(), claimTimeoutMs: 800, injectRaw });

describe('postgres bus on PGlite', () => {
  it('publishes through the outbox statement inside a caller transaction, only when it commits', async () => {
    const bus = client();
    const stream = `outbox.${Date.now()}`;
    const seen: unknown[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push(d.envelope?.data);
        await d.ack();
      },
      { concurrency: 1, consumerName: 'c1' },
    );
    const kept = postgresPublishStatement(stream, createEnvelope({ stream, data: { n: 1 }, source: 'test@1.0.0' }));
    await database.transaction(async (tx) => {
      await tx.query(kept.text, kept.values);
    });
    const dropped = postgresPublishStatement(stream, createEnvelope({ stream, data: { n: 2 }, source: 'test@1.0.0' }));
    await database
      .transaction(async (tx) => {
        await tx.query(dropped.text, dropped.values);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    // The same through drizzle, as a service's database handle runs it: the placeholders become drizzle params.
    const viaDrizzle = postgresPublishStatement(
      stream,
      createEnvelope({ stream, data: { n: 3 }, source: 'test@1.0.0' }),
    );
    const parts = viaDrizzle.text.split(/\$(\d+)/);
    const statement = sql.join(
      parts.map((part, i) => (i % 2 === 0 ? sql.raw(part) : sql.param(viaDrizzle.values[Number(part) - 1]))),
    );
    await drizzle({ client: database }).transaction(async (tx) => {
      await tx.execute(statement);
    });
    await waitFor(() => seen.length === 2, 'the committed messages');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen).toEqual([{ n: 1 }, { n: 3 }]);
    await sub.stop();
    await bus.close();
  });

  it('deletes messages every group acknowledged, and keeps those a group still owes', async () => {
    const bus = client();
    const stream = `cleanup.${Date.now()}`;
    const fast = await bus.subscribe(stream, 'fast', async (d) => d.ack(), { concurrency: 4, consumerName: 'c1' });
    const lazy = await bus.subscribe(stream, 'lazy', async () => undefined, { concurrency: 1, consumerName: 'c2' });
    await lazy.stop();
    for (let n = 0; n < 5; n++)
      await bus.publish(stream, createEnvelope({ stream, data: { n }, source: 'test@1.0.0' }));
    await waitFor(async () => (await bus.stats(stream, 'fast')).lag === 0, 'the fast group to ack everything');
    await bus.cleanup();
    const count = async () =>
      (
        await database.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${schema}.messages WHERE stream = $1`, [
          stream,
        ])
      ).rows[0]?.n;
    expect(await count()).toBe(5);
    await bus.deleteGroup(stream, 'lazy');
    await bus.cleanup();
    expect(await count()).toBe(0);
    await fast.stop();
    await bus.close();
  });

  it('keeps messages and group positions in a folder across a restart', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gantry-bus-pglite-'));
    try {
      const url = `pglite:${path.join(dir, 'bus')}?pollIntervalMs=100`;
      const stream = 'restart';
      const before = await resolveBus(url, { instanceId: 'test' });
      const first = await before.subscribe(stream, 'g', async (d) => d.ack(), { concurrency: 1, consumerName: 'c1' });
      await first.stop();
      for (let n = 0; n < 3; n++)
        await before.publish(stream, createEnvelope({ stream, data: { n }, source: 'test@1.0.0' }));
      await before.close();
      const after = await resolveBus(url, { instanceId: 'test' });
      expect(await after.stats(stream, 'g')).toMatchObject({ lag: 3 });
      const seen: number[] = [];
      const second = await after.subscribe(
        stream,
        'g',
        async (d) => {
          seen.push((d.envelope?.data as { n: number } | undefined)?.n ?? -1);
          await d.ack();
        },
        { concurrency: 1, consumerName: 'c2' },
      );
      await waitFor(() => seen.length === 3, 'the messages published before the restart');
      expect(seen).toEqual([0, 1, 2]);
      await second.stop();
      await after.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Opening a PGlite folder initialises a database: seconds, more on a busy machine.
  }, 90_000);

  it('opens by URL and refuses a bad option', async () => {
    const bus = await resolveBus('pglite:memory?claimTimeoutMs=1000', { instanceId: 'test' });
    expect(bus).toMatchObject({ kind: 'postgres', embedded: true });
    expect(await bus.check()).toEqual({ ok: true });
    await bus.close();
    expect(await bus.check()).toEqual({ ok: false, detail: 'closed' });
    await expect(resolveBus('pglite:memory?claimTimeoutMs=soon', { instanceId: 'test' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
    });
    await expect(resolveBus('pglite:memory?schema=Bad-Name', { instanceId: 'test' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
    });
  }, 60_000);
});

describe('postgres bus options and rows', () => {
  it('takes its options out of the URL and leaves the rest to the driver', () => {
    const parsed = parsePostgresBusUrl(
      new URL(
        'postgres://app@db:5432/app?sslmode=require&schema=orders_bus&claimTimeoutMs=5000&transactionPooling=true',
      ),
    );
    expect(parsed.connectionString).toBe('postgres://app@db:5432/app?sslmode=require');
    expect(parsed.options).toMatchObject({
      schema: 'orders_bus',
      claimTimeoutMs: 5000,
      transactionPooling: true,
      pollIntervalMs: 1000,
      publishRetryMs: 10_000,
      cleanupIntervalMs: 60_000,
      retentionMs: 0,
      poolSize: 10,
    });
    expect(() => parsePostgresBusUrl(new URL('postgres://db/app?transactionPooling=yes'))).toThrow(/true or false/);
    expect(() => parsePostgresBusUrl(new URL('postgres://db/app?claimTimeoutMs=0'))).toThrow(/claimTimeoutMs/);
  });

  it('reads back what it wrote, and turns anything else into an undecodable delivery', () => {
    const envelope = createEnvelope({ stream: 's', data: { n: 1 }, source: 'test@1.0.0', key: 'k' });
    const row = encodeRow('s', envelope);
    expect(row.key).toBe('k');
    const claimed = { id: '1', attempts: 1, headers: JSON.parse(row.headers) as unknown, body: row.body, found: true };
    expect(decodeRow(claimed)).toEqual({ envelope });
    expect(decodeRow({ ...claimed, headers: ['ce-id'] })).toMatchObject({
      envelope: null,
      decodeError: 'headers are not a JSON object',
    });
    expect(decodeRow({ ...claimed, headers: { ...(claimed.headers as object), 'ce-id': 7 } })).toMatchObject({
      envelope: null,
      decodeError: expect.stringContaining('ce-id'),
    });
    expect(decodeRow({ ...claimed, body: '{' })).toMatchObject({ envelope: null, raw: '{' });
    expect(decodeRow({ ...claimed, found: false, headers: null, body: null })).toMatchObject({
      envelope: null,
      raw: '',
    });
    expect(() => encodeRow('s', { ...envelope, subject: 'a\u0000b' })).toThrow(
      expect.objectContaining({ code: 'GANTRY_ERR_STREAM_INVALID_MESSAGE' }),
    );
  });
});
