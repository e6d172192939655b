import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { database } from '../../src/db/index.ts';
import type { JobRecord } from '../../src/jobs/index.ts';
import { PostgresJobStore } from '../../src/jobs/index.ts';
import type { SqlRunner } from '../../src/outbox/tables.ts';
import { service } from '../../src/service/service.ts';
import { startTestHost, type TestHost, waitFor } from '../../src/testing/index.ts';
import { runJobStoreConformance } from '../conformance/job-store-conformance.ts';

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const root = new URL('../..', import.meta.url).pathname;
const hostFile = 'test/fixtures/jobs-host.ts';
const migrations = new URL('../fixtures/jobs-migrations', import.meta.url);

/** A fresh database for this file, dropped at the end. */
const databaseName = `gantry_jobs_${randomUUID().slice(0, 8)}`;
const databaseUrl = `postgres://postgres@127.0.0.1:5432/${databaseName}`;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`create database ${databaseName}`);
  await admin.end();
});
afterAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`drop database if exists ${databaseName} with (force)`);
  await admin.end();
});

runJobStoreConformance('PostgreSQL', async () => {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const db = drizzle({ client: pool }) as unknown as SqlRunner;
  const schema = `gantry_conformance_${randomUUID().slice(0, 8)}`;
  return {
    store: new PostgresJobStore({ db, schema }),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    ageHeartbeats: async (ms) => {
      await db.execute(
        sql`update ${sql.identifier(schema)}.jobs set heartbeat_at = heartbeat_at - make_interval(secs => ${ms / 1000}::double precision) where state = 'running'`,
      );
    },
    close: () => pool.end(),
  };
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  GANTRY_ENV: 'test',
  DATABASE_URL: databaseUrl,
  LOG_LEVEL: 'warn',
  ...extra,
});

/** `gantry start --host jobs-host.ts` on a free port, resolved once it is live. */
async function startWorker(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['bin/gantry.js', 'start', '--host', hostFile], {
    cwd: root,
    env: env({ PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor(
    () =>
      fetch(`http://127.0.0.1:${port}/health/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    `worker on ${port} ready (${output})`,
    60_000,
  );
  return { child, port, output: () => output };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** Runs `gantry jobs ...` and parses its JSON answer. */
function gantryJobs(args: string[]): Promise<JobRecord> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const child = spawn(process.execPath, ['bin/gantry.js', 'jobs', ...args, '--host', hostFile], {
      cwd: root,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(stdout) as JobRecord)
        : reject(new Error(`gantry jobs ${args.join(' ')} exited ${code}: ${stdout}${stderr}`)),
    );
  });
}

describe('jobs across processes on PostgreSQL', () => {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const record = async (id: string): Promise<JobRecord | undefined> =>
    new PostgresJobStore({ db: drizzle({ client: pool }) as unknown as SqlRunner, schema: 'gantry_chores' }).get(id);
  const workers: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of workers) await kill(child, 'SIGKILL');
    await pool.end();
  });

  it('runs a job again after its worker is SIGKILLed mid-run, once the heartbeat times out', async () => {
    const first = await startWorker();
    workers.push(first.child);
    const answer = await fetch(`http://127.0.0.1:${first.port}/chores`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ms: 3_000 }),
    });
    expect(answer.status).toBe(202);
    const { id } = (await answer.json()) as { id: string };
    await waitFor(async () => (await record(id))?.state === 'running', 'the job running in the first worker', 10_000);
    expect((await record(id))?.worker).toContain(String(first.child.pid));
    await kill(first.child, 'SIGKILL');

    const second = await startWorker();
    workers.push(second.child);
    await waitFor(
      async () => (await record(id))?.state === 'succeeded',
      'the job to finish in the second worker',
      30_000,
    );
    const done = (await record(id)) as JobRecord;
    expect(done.attempts).toBe(2);
    expect(done.result).toEqual({ pid: second.child.pid });
    expect(done.failures).toHaveLength(1);
    expect(done.failures[0]?.error.code).toBe('GANTRY_ERR_JOB_HEARTBEAT_LOST');
    // Taken back no sooner than the heartbeat timeout (1.5 s) after the first attempt's last heartbeat.
    expect(
      Date.parse(done.failures[0]?.failedAt ?? '') - Date.parse(done.failures[0]?.startedAt ?? ''),
    ).toBeGreaterThan(1_500);

    // Operators: cancel a waiting job, then retry it, from the CLI.
    const delayed = await fetch(`http://127.0.0.1:${second.port}/chores`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ms: 10, delay: 600_000 }),
    });
    const { id: waiting } = (await delayed.json()) as { id: string };
    expect((await gantryJobs(['cancel', 'chores', waiting])).state).toBe('cancelled');
    expect((await record(waiting))?.state).toBe('cancelled');
    expect((await gantryJobs(['retry', 'chores', waiting])).state).toBe('queued');
    await waitFor(async () => (await record(waiting))?.state === 'succeeded', 'the retried job to run', 15_000);
    expect((await gantryJobs(['get', 'chores', waiting])).result).toEqual({ pid: second.child.pid });
    await kill(second.child, 'SIGTERM');
  });

  it('processes 10,000 jobs across two worker processes, each once', async () => {
    const a = await startWorker();
    const b = await startWorker();
    workers.push(a.child, b.child);
    // Enqueued through both workers at once, in batches, while both already work.
    const batches = [];
    for (let from = 0; from < 10_000; from += 1_000) {
      const port = (from / 1_000) % 2 === 0 ? a.port : b.port;
      batches.push(
        fetch(`http://127.0.0.1:${port}/chores/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ from, count: 1_000 }),
        }).then((r) => expect(r.status).toBe(202)),
      );
    }
    await Promise.all(batches);
    const effects = async () =>
      (
        await pool.query<{ n: number; distinct: number; pids: number }>(
          'select count(*)::int as n, count(distinct n)::int as distinct, count(distinct pid)::int as pids from chore_effects',
        )
      ).rows[0];
    await waitFor(async () => ((await effects())?.distinct ?? 0) >= 10_000, 'every job to run', 240_000);
    const done = await effects();
    expect(done).toMatchObject({ n: 10_000, distinct: 10_000, pids: 2 });
    const states = await pool.query<{ state: string; n: number }>(
      `select state, count(*)::int as n from gantry_chores.jobs where task = 'chores.count' group by state`,
    );
    expect(states.rows).toEqual([{ state: 'succeeded', n: 10_000 }]);
    await kill(a.child, 'SIGTERM');
    await kill(b.child, 'SIGTERM');
  }, 300_000);

  it('fires a cron schedule once per tick with two hosts on one database', async () => {
    const ticks: { tick: string; host: string }[] = [];
    const make = (host: string) =>
      service({ name: 'clock', version: '1.0.0', drivers: { db: database({ schema: {}, migrations }) } })
        .jobs({ pollMs: 50 })
        .cron(
          '* * * * * *',
          async (ctx) => {
            ticks.push({ tick: ctx.tick.scheduledAt.toISOString(), host });
          },
          { name: 'every-second' },
        );
    const hosts: TestHost[] = [];
    for (const name of ['a', 'b']) {
      hosts.push(await startTestHost({ services: [make(name)], environment: { DATABASE_URL: databaseUrl } }));
    }
    try {
      await waitFor(() => new Set(ticks.map((t) => t.tick)).size >= 4, 'four ticks', 15_000);
    } finally {
      for (const host of hosts) await host.stop();
    }
    const distinct = new Set(ticks.map((t) => t.tick));
    expect(ticks.length).toBe(distinct.size);
    const { rows } = await pool.query<{ n: number; distinct: number }>(
      `select count(*)::int as n, count(distinct tick_at)::int as distinct from gantry_clock.job_ticks where schedule = 'every-second'`,
    );
    expect(rows[0]?.n).toBe(rows[0]?.distinct);
    expect(rows[0]?.n).toBeGreaterThanOrEqual(distinct.size);
    const jobs = await pool.query<{ n: number }>(
      `select count(*)::int as n from gantry_clock.jobs where task = 'cron:every-second'`,
    );
    expect(jobs.rows[0]?.n).toBe(rows[0]?.n);
  });
});
