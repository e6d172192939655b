// The PostgreSQL bus against raw pg doing the same acknowledged work, in one run.
// Alone: `npx tsx bench/bus-postgres.ts [messages] [url]`.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { encodeMessage } from '../src/bus/codec.ts';
import { createEnvelope } from '../src/bus/envelope.ts';
import { openPostgresBus } from '../src/bus/postgres/index.ts';
import { benchData } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Messages per INSERT of the raw producer, and per burst of concurrent `publish` calls of the adapter's. */
const PUBLISH_BATCH = 500;
/** Messages per claim of the raw consumer; the adapter's subscription runs at the same concurrency. */
const CONSUME_BATCH = 100;

const now = (): number => performance.timeOrigin + performance.now();

/** A side's figures, plus what it cost in CPU per message. */
export interface PostgresBenchRow extends BusBenchRow {
  /** CPU time of this process (JavaScript, driver, sockets) per message, in microseconds. */
  clientCpuUs: number;
  /**
   * CPU time of the side's PostgreSQL backends per message, in microseconds, read from /proc: undefined when the
   * server does not run on this host. With producer, consumer and server on one machine, both halves decide msg/s.
   */
  serverCpuUs: number | undefined;
}

/**
 * Publishes `messages` messages and consumes them with acknowledgement, with raw pg as an expert would write it
 * (multi-row INSERTs; one consumer claiming 100 rows at a time with `FOR UPDATE SKIP LOCKED` in a transaction and
 * deleting them), and through the Gantry bus (`publish` in bursts, `subscribe` with concurrency 100, `ack`). Producer
 * and consumer run at the same time in this process. Latency runs from the publish time written in the body to the
 * handler. The two alternate for `rounds` rounds (default 3) and each reports its best round, so a burst of load
 * from another process on the host does not decide the ratio. Works in a schema of its own, dropped at the end.
 */
export async function benchPostgres(options: {
  messages: number;
  url: string;
  rounds?: number;
}): Promise<PostgresBenchRow[]> {
  const schema = `gantry_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: options.url, max: 1 });
  const raw: PostgresBenchRow[] = [];
  const adapter: PostgresBenchRow[] = [];
  try {
    for (let round = 0; round < (options.rounds ?? 3); round++) {
      raw.push(await benchRaw(options, admin, schema, round));
      adapter.push(await benchAdapter(options, admin, schema, round));
    }
    return [best(raw), best(adapter)];
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

function best(rows: PostgresBenchRow[]): PostgresBenchRow {
  return rows.reduce((a, b) => (b.msgsPerSec > a.msgsPerSec ? b : a));
}

async function benchRaw(
  options: { messages: number; url: string },
  admin: pg.Pool,
  schema: string,
  round: number,
): Promise<PostgresBenchRow> {
  const applicationName = `bench raw ${schema}`;
  const pool = new pg.Pool({ connectionString: options.url, max: 4, application_name: applicationName });
  const table = `"${schema}".raw_queue_${round}`;
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await pool.query(
    `CREATE TABLE ${table} (id bigserial PRIMARY KEY, headers jsonb NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const start = now();
  let last = start;

  const produce = async (): Promise<void> => {
    for (let sent = 0; sent < options.messages; sent += PUBLISH_BATCH) {
      const count = Math.min(PUBLISH_BATCH, options.messages - sent);
      const headers: string[] = [];
      const bodies: string[] = [];
      for (let i = 0; i < count; i++) {
        const wire = encodeMessage(
          createEnvelope({ stream: 'bench', data: benchData(sent + i, now()), source: 'bench@1.0.0' }),
        );
        headers.push(JSON.stringify(wire.headers));
        bodies.push(wire.body);
      }
      await pool.query(
        `INSERT INTO ${table} (headers, body) SELECT h::jsonb, b FROM unnest($1::text[], $2::text[]) AS u(h, b)`,
        [headers, bodies],
      );
    }
  };

  const consume = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      while (latencies.length < options.messages) {
        await client.query('BEGIN');
        const { rows } = await client.query<{ id: string; body: string }>(
          `SELECT id, headers, body FROM ${table} ORDER BY id LIMIT ${CONSUME_BATCH} FOR UPDATE SKIP LOCKED`,
        );
        for (const row of rows) {
          const data = JSON.parse(row.body) as { t: number };
          last = now();
          latencies.push(last - data.t);
        }
        if (rows.length > 0)
          await client.query(`DELETE FROM ${table} WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
        await client.query('COMMIT');
        if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    } finally {
      client.release();
    }
  };

  await Promise.all([produce(), consume()]);
  const clientCpu = process.cpuUsage(cpu);
  const serverCpu = await backendsCpuUs(admin, applicationName);
  await pool.end();
  return row('raw pg (INSERT batches, SKIP LOCKED claim of 100 + DELETE)', options.messages, last - start, latencies, {
    clientCpu,
    serverCpu,
  });
}

async function benchAdapter(
  options: { messages: number; url: string },
  admin: pg.Pool,
  schema: string,
  round: number,
): Promise<PostgresBenchRow> {
  const url = new URL(options.url);
  url.searchParams.set('schema', schema);
  url.searchParams.set('cleanupIntervalMs', '0');
  const instanceId = `bench ${schema}`;
  const bus = await openPostgresBus(url, { instanceId });
  const stream = `bench.${round}`;
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const start = now();
  let last = start;
  const subscription = await bus.subscribe(
    stream,
    'bench',
    async (delivery) => {
      const data = delivery.envelope?.data as { t: number };
      await delivery.ack();
      last = now();
      latencies.push(last - data.t);
      if (latencies.length === options.messages) done();
    },
    { concurrency: CONSUME_BATCH, consumerName: 'bench' },
  );
  for (let sent = 0; sent < options.messages; sent += PUBLISH_BATCH) {
    const count = Math.min(PUBLISH_BATCH, options.messages - sent);
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        bus.publish(stream, createEnvelope({ stream, data: benchData(sent + i, now()), source: 'bench@1.0.0' })),
      ),
    );
  }
  await finished;
  await subscription.stop();
  const clientCpu = process.cpuUsage(cpu);
  const serverCpu = await backendsCpuUs(admin, `gantry-bus ${instanceId}`);
  await bus.close();
  return row('gantry postgres (publish, subscribe concurrency 100, ack)', options.messages, last - start, latencies, {
    clientCpu,
    serverCpu,
  });
}

/**
 * The CPU time, in microseconds, the backends of one application have used since they started (their whole life,
 * as each side opens its own connections), from /proc/<pid>/stat; undefined when the server runs elsewhere.
 */
async function backendsCpuUs(admin: pg.Pool, applicationName: string): Promise<number | undefined> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
    applicationName,
  ]);
  let ticks = 0;
  try {
    for (const { pid } of rows) {
      // The fields after the command name (which may hold spaces) start at the state; utime and stime are 12th and 13th.
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
  } catch {
    return undefined;
  }
  // Linux reports these in clock ticks of 1/100 s (USER_HZ) on every common platform.
  return rows.length === 0 ? undefined : ticks * 10_000;
}

function row(
  name: string,
  messages: number,
  elapsedMs: number,
  latencies: number[],
  cost: { clientCpu: NodeJS.CpuUsage; serverCpu: number | undefined },
): PostgresBenchRow {
  const sorted = latencies.sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
  return {
    name,
    msgsPerSec: messages / (elapsedMs / 1_000),
    p99Ms: p99,
    clientCpuUs: (cost.clientCpu.user + cost.clientCpu.system) / messages,
    serverCpuUs: cost.serverCpu === undefined ? undefined : cost.serverCpu / messages,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const messages = Number(process.argv[2] ?? 20_000);
  const url = process.argv[3] ?? process.env.GANTRY_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const rows = await benchPostgres({ messages, url });
  const base = rows[0] as PostgresBenchRow;
  for (const r of rows) {
    const server = r.serverCpuUs === undefined ? '' : `  server ${r.serverCpuUs.toFixed(1).padStart(6)} µs/msg`;
    console.log(
      `${r.name.padEnd(62)}${r.msgsPerSec.toFixed(0).padStart(8)} msg/s  p99 ${r.p99Ms.toFixed(1).padStart(7)} ms  ${(r.msgsPerSec / base.msgsPerSec).toFixed(2)}x  client ${r.clientCpuUs.toFixed(1).padStart(6)} µs/msg${server}`,
    );
  }
}
