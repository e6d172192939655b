// Jobs: Gantry tasks against raw SQL doing the same claim and complete work on the same PostgreSQL, in one run.
// `npx tsx bench/jobs.ts` runs it alone (BENCH_JOBS, DATABASE_URL); `npm run bench` runs it with the others.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { database } from '../src/db/index.ts';
import { createHost } from '../src/host/host.ts';
import { defineTask, jobTablesSql } from '../src/jobs/index.ts';
import { t } from '../src/schema/index.ts';
import { service } from '../src/service/service.ts';

/** One measured way of running jobs. */
export interface JobsBenchRow {
  /** `raw SQL` (the baseline) or `gantry tasks`. */
  name: string;
  /** Jobs enqueued, claimed, run and recorded as done per second, from the first enqueue to the last completion. */
  jobsPerSec: number;
  /** 99th percentile of the time from enqueue to the end of the handler, in milliseconds. */
  p99Ms: number;
}

/** Jobs in flight at once on the enqueue side, and handlers at once on the worker side, for both rows. */
const ENQUEUE_CONCURRENCY = 64;
const WORKERS = 32;
const POOL = 10;

/**
 * Enqueues `jobs` no-op jobs from 64 concurrent producers while a worker of 32 slots runs them, once through Gantry
 * (`ctx.enqueue`, the job runtime, its PostgreSQL store) and once through hand-written SQL with the same table shape
 * and the same `FOR UPDATE SKIP LOCKED` claim, each in a database of its own on the server at `url`.
 */
export async function benchJobs(options: { jobs: number; url: string }): Promise<JobsBenchRow[]> {
  const rows: JobsBenchRow[] = [];
  rows.push(await withDatabase(options.url, (url) => rawSql(options.jobs, url)));
  rows.push(await withDatabase(options.url, (url) => gantryTasks(options.jobs, url)));
  return rows;
}

async function withDatabase<T>(url: string, run: (url: string) => Promise<T>): Promise<T> {
  const name = `gantry_bench_jobs_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  try {
    const target = new URL(url);
    target.pathname = `/${name}`;
    return await run(target.toString());
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

/** Runs `count` enqueues, `concurrency` at a time; returns when each was called (ms, `performance.now()`). */
async function produce(count: number, enqueue: (i: number) => Promise<unknown>): Promise<Float64Array> {
  const startedAt = new Float64Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: ENQUEUE_CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        startedAt[i] = performance.now();
        await enqueue(i);
      }
    }),
  );
  return startedAt;
}

function row(name: string, startedAt: Float64Array, finishedAt: Float64Array): JobsBenchRow {
  const latencies = Array.from(finishedAt, (end, i) => end - (startedAt[i] ?? 0)).sort((a, b) => a - b);
  const first = Math.min(...startedAt);
  const last = Math.max(...finishedAt);
  return {
    name,
    jobsPerSec: startedAt.length / ((last - first) / 1000),
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
  };
}

function waitUntil(done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (done()) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
}

async function rawSql(jobs: number, url: string): Promise<JobsBenchRow> {
  const pool = new pg.Pool({ connectionString: url, max: POOL });
  // `pool.end()` resolves before its connections have closed; dropping the database right after may end one that is
  // still closing, and a pool without a listener would throw that error out of the process.
  pool.on('error', () => undefined);
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const db = drizzle({ client: pool });
  await db.transaction(async (tx) => {
    for (const statement of jobTablesSql('raw')) await tx.execute(statement);
  });
  const finishedAt = new Float64Array(jobs);
  let finished = 0;
  let producing = true;
  // Each slot claims one due job, runs the (empty) handler and marks it done: the plainest correct worker.
  const slots = Array.from({ length: WORKERS }, async () => {
    while (producing || finished < jobs) {
      const { rows } = await pool.query<{ id: string; input: { i: number } }>(
        `update raw.jobs set state = 'running', attempts = attempts + 1, started_at = now(), heartbeat_at = now(), worker = 'raw'
         where id = (select id from raw.jobs where task = 'bench.noop' and state in ('queued', 'retrying') and run_at <= now()
                     order by priority desc, run_at, id limit 1 for update skip locked)
         returning id, input`,
      );
      const claimed = rows[0];
      if (claimed === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      finishedAt[claimed.input.i] = performance.now();
      await pool.query(
        `update raw.jobs set state = 'succeeded', result = 'null'::jsonb, finished_at = now(), progress = 1 where id = $1 and attempts = 1 and state = 'running'`,
        [claimed.id],
      );
      finished++;
    }
  });
  const startedAt = await produce(jobs, (i) =>
    pool.query(`insert into raw.jobs (task, input, max_attempts) values ('bench.noop', $1::jsonb, 3)`, [
      JSON.stringify({ i }),
    ]),
  );
  producing = false;
  await waitUntil(() => finished >= jobs);
  await Promise.all(slots);
  await pool.end();
  return row('raw SQL', startedAt, finishedAt);
}

async function gantryTasks(jobs: number, url: string): Promise<JobsBenchRow> {
  const noop = defineTask('bench.noop', { input: t.Object({ i: t.Integer() }), concurrency: WORKERS });
  const finishedAt = new Float64Array(jobs);
  let finished = 0;
  const migrations = new URL('../test/fixtures/jobs-migrations', import.meta.url);
  const svc = service({ name: 'bench', version: '1.0.0', drivers: { db: database({ schema: {}, migrations }) } }).task(
    noop,
    async ({ i }) => {
      finishedAt[i] = performance.now();
      finished++;
    },
  );
  const host = createHost({
    services: [svc],
    env: 'test',
    environment: { DATABASE_URL: url, LOG_LEVEL: 'warn' },
    config: { host: { port: 0, logLevel: 'warn' }, services: { bench: { drivers: { db: { poolSize: POOL } } } } },
  });
  await host.start();
  const enqueuer = host.runtime('bench').jobs;
  if (enqueuer === undefined) throw new Error('the bench service keeps no jobs');
  const startedAt = await produce(jobs, (i) => enqueuer.enqueue(noop, { i }));
  await waitUntil(() => finished >= jobs);
  // The last completions are recorded after their handlers; stopping waits for them.
  await host.stop();
  return row('gantry tasks', startedAt, finishedAt);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await benchJobs({
    jobs: Number(process.env.BENCH_JOBS ?? 5_000),
    url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  });
  const base = result[0];
  for (const r of result) {
    const ratio = base ? (r.jobsPerSec / base.jobsPerSec).toFixed(2) : '-';
    console.log(
      `${r.name.padEnd(16)}${r.jobsPerSec.toFixed(0).padStart(8)} jobs/s${r.p99Ms.toFixed(1).padStart(10)} ms p99${ratio.padStart(8)}`,
    );
  }
}
