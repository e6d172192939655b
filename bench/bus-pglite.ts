// The Postgres log bus on embedded PGlite against raw PGlite doing the same acknowledged work, in one run.
// Alone: `node bench/bus-pglite.ts [messages]`.
import { PGlite } from '@electric-sql/pglite';
import { encodeMessage } from '../src/bus/codec.ts';
import { createEnvelope } from '../src/bus/envelope.ts';
import { openPgliteBus } from '../src/bus/postgres/index.ts';
import { benchData, type Figures, figures, measureAdapter, median, medianOf } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Messages per INSERT of the raw producer (the adapter's publishes go out in bursts of as many). */
const PUBLISH_BATCH = 500;
/** Messages per claim of the raw consumer; the adapter's subscription runs at the same concurrency. */
const CONSUME_BATCH = 100;
/** Measured rounds of each side. */
const ROUNDS = 3;

/** A side's figures, plus what it cost in CPU per message (the database runs in this process too). */
export interface PgliteBenchRow extends BusBenchRow {
  cpuUs: number;
}

interface Round extends Figures {
  cpuUs: number;
}

/**
 * Publishes `messages` messages and consumes them with acknowledgement on an in-memory PGlite, with raw PGlite as an
 * expert would write it (the same table and statements as `bench/bus-postgres.ts`' raw side: multi-row INSERTs, one
 * consumer claiming 100 rows at a time with `FOR UPDATE SKIP LOCKED` in a transaction and deleting them), and through
 * the Gantry bus opened on `pglite:memory` (`publish` in bursts, `subscribe` with concurrency 100, `ack`). Each side
 * gets a new database per round. The sides alternate and each reports its median round.
 */
export async function benchPglite(options: { messages: number }): Promise<PgliteBenchRow[]> {
  // Unrecorded rounds first, so neither side pays for JIT warm-up in the figures.
  const warmup = Math.min(2_000, options.messages);
  await rawRun(warmup);
  await adapterRun(warmup);
  const raw: Round[] = [];
  const adapter: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raw.push(await rawRun(options.messages));
    adapter.push(await adapterRun(options.messages));
  }
  return [
    {
      name: 'raw pglite (INSERT batches, SKIP LOCKED claim of 100 + DELETE)',
      ...median(raw),
      cpuUs: medianOf(raw, (round) => round.cpuUs),
    },
    {
      name: 'gantry pglite (publish, subscribe concurrency 100, ack)',
      ...median(adapter),
      cpuUs: medianOf(adapter, (round) => round.cpuUs),
    },
  ];
}

/** CPU time of this process per message since `since`, in microseconds. */
function cpuPerMessage(since: NodeJS.CpuUsage, messages: number): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / messages;
}

async function rawRun(messages: number): Promise<Round> {
  const db = await PGlite.create();
  await db.exec(
    'CREATE TABLE queue (id bigserial PRIMARY KEY, headers jsonb NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
  );
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();

  const produce = async (): Promise<void> => {
    for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
      const headers: string[] = [];
      const bodies: string[] = [];
      for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
        const wire = encodeMessage(
          createEnvelope({ stream: 'bench', data: benchData(n, performance.now()), source: 'bench@1.0.0' }),
        );
        headers.push(JSON.stringify(wire.headers));
        bodies.push(wire.body);
      }
      await db.query(
        'INSERT INTO queue (headers, body) SELECT h::jsonb, b FROM unnest($1::text[], $2::text[]) AS u(h, b)',
        [headers, bodies],
      );
    }
  };

  const consume = async (): Promise<void> => {
    while (latencies.length < messages) {
      const claimed = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: string; body: string }>(
          `SELECT id, headers, body FROM queue ORDER BY id LIMIT ${CONSUME_BATCH} FOR UPDATE SKIP LOCKED`,
        );
        for (const row of rows) {
          const data = JSON.parse(row.body) as { t: number };
          latencies.push(performance.now() - data.t);
        }
        if (rows.length > 0) await tx.query('DELETE FROM queue WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
        return rows.length;
      });
      if (claimed === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
  };

  await Promise.all([produce(), consume()]);
  const elapsed = performance.now() - started;
  const cpuUs = cpuPerMessage(cpu, messages);
  await db.close();
  return { ...figures(messages, elapsed, latencies), cpuUs };
}

async function adapterRun(messages: number): Promise<Round> {
  const bus = await openPgliteBus(new URL('pglite:memory'), { instanceId: 'bench' });
  const cpu = process.cpuUsage();
  // measureAdapter closes the bus: its CPU counts, the database's creation does not.
  const result = await measureAdapter(bus, 'bench', messages, CONSUME_BATCH);
  return { ...result, cpuUs: cpuPerMessage(cpu, messages) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchPglite({ messages: Number(process.argv[2] ?? 20_000) });
  const base = rows[0] as PgliteBenchRow;
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(66)}${row.msgsPerSec.toFixed(0).padStart(8)} msg/s  p99 ${row.p99Ms.toFixed(1).padStart(7)} ms  ${(row.msgsPerSec / base.msgsPerSec).toFixed(2)}x  cpu ${row.cpuUs.toFixed(1).padStart(6)} µs/msg`,
    );
  }
}
