import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { database } from '../db/database.ts';
import { t } from '../schema/index.ts';
import { service } from '../service/service.ts';
import { startTestHost, type TestHost } from '../testing/index.ts';
import type { JobRecord } from './job-store.ts';
import { jobRoutes } from './routes.ts';
import { deadJobSchema } from './schemas.ts';
import { defineTask } from './task.ts';

const migrations = new URL('../../test/fixtures/jobs-migrations', import.meta.url);

const flaky = defineTask('test.flaky', {
  input: t.Object({ failures: t.Integer() }),
  attempts: 5,
  backoff: { kind: 'linear', delayMs: 150 },
});
const alert = defineTask('test.alert', { input: deadJobSchema, attempts: 1 });
const doomed = defineTask('test.doomed', {
  input: t.Object({ reason: t.String() }),
  attempts: 2,
  backoff: { kind: 'fixed', delayMs: 10 },
  onFail: alert,
});
const slow = defineTask('test.slow', { input: t.Object({ ms: t.Integer({ default: 10 }) }), concurrency: 2 });

describe('tasks on the embedded database', () => {
  let app: TestHost;
  const calls = new Map<string, number>();
  const alerts: unknown[] = [];
  const aborted: string[] = [];
  const ticks: string[] = [];

  beforeAll(async () => {
    const svc = service({ name: 'worker', version: '1.0.0', drivers: { db: database({ schema: {}, migrations }) } })
      .jobs({ pollMs: 25, heartbeatMs: 100, heartbeatTimeoutMs: 1_000 })
      .task(flaky, async ({ failures }, ctx) => {
        const n = (calls.get(ctx.job.id) ?? 0) + 1;
        calls.set(ctx.job.id, n);
        expect(ctx.job.attempt).toBe(n);
        await ctx.progress(0.5, `attempt ${n}`);
        if (n <= failures) throw new Error(`failure ${n}`);
        return { attempts: n };
      })
      .task(doomed, async ({ reason }) => {
        throw new Error(reason);
      })
      .task(alert, async (dead) => {
        alerts.push(dead);
      })
      .task(slow, async ({ ms }, ctx) => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            aborted.push(ctx.job.id);
            resolve();
          });
        });
      })
      .cron(
        '* * * * * *',
        async (ctx) => {
          ticks.push(ctx.tick.scheduledAt.toISOString());
        },
        { name: 'every-second' },
      )
      .post(
        '/slow',
        { body: t.Object({ key: t.Optional(t.String()), rollback: t.Optional(t.Boolean()) }), response: t.Any() },
        async ({ body }, ctx) => {
          if (body.rollback) {
            await ctx.drivers.db.db
              .transaction(async (tx) => {
                await ctx.enqueue(slow, { ms: 1 }, { tx, key: 'rolled-back' });
                throw new Error('roll back');
              })
              .catch(() => undefined);
            return null;
          }
          return ctx.enqueue(slow, { ms: 10 }, body.key ? { key: body.key, delay: 60_000 } : {});
        },
      );
    svc.use(jobRoutes({ authorize: (_ctx, action) => action.kind !== 'retry' }));
    app = await startTestHost({ services: [svc] });
  });
  afterAll(async () => app?.stop());

  const jobs = () => app.host.runtime('worker').jobs as NonNullable<ReturnType<TestHost['host']['runtime']>['jobs']>;
  const settled = async (id: string, state: JobRecord['state'], timeoutMs = 10_000): Promise<JobRecord> => {
    let record: JobRecord | undefined;
    await app.waitFor(
      async () => {
        record = await jobs().get(id);
        return record?.state === state;
      },
      `job ${id} ${state}`,
      timeoutMs,
    );
    return record as JobRecord;
  };

  it('retries a task that fails twice, then records its success after the delays of its policy', async () => {
    const { id } = await jobs().enqueue(flaky, { failures: 2 });
    const record = await settled(id, 'succeeded');
    expect(record).toMatchObject({
      attempts: 3,
      result: { attempts: 3 },
      progress: 1,
      lastError: { message: 'failure 2' },
    });
    expect(record.failures.map((f) => f.attempt)).toEqual([1, 2]);
    const [first, second] = record.failures;
    const delay1 = Date.parse(second?.startedAt ?? '') - Date.parse(first?.failedAt ?? '');
    const delay2 = Date.parse(record.startedAt ?? '') - Date.parse(second?.failedAt ?? '');
    // Linear 150 ms: 150 then 300, measured on the database's clock, late by at most a poll and a busy machine.
    expect(delay1).toBeGreaterThanOrEqual(145);
    expect(delay1).toBeLessThan(150 + 400);
    expect(delay2).toBeGreaterThanOrEqual(295);
    expect(delay2).toBeLessThan(300 + 400);
  });

  it('kills a job after its last attempt and runs its on-fail task with the dead job', async () => {
    const { id } = await jobs().enqueue(doomed, { reason: 'no such customer' });
    const record = await settled(id, 'dead');
    expect(record.attempts).toBe(2);
    expect(record.lastError).toMatchObject({ code: 'GANTRY_ERR_INTERNAL', message: 'no such customer' });
    await app.waitFor(() => alerts.length > 0, 'the on-fail task');
    expect(alerts).toEqual([
      {
        jobId: id,
        task: 'test.doomed',
        input: { reason: 'no such customer' },
        attempts: 2,
        error: { code: 'GANTRY_ERR_INTERNAL', message: 'no such customer' },
      },
    ]);
    // Retrying the dead job grants its attempts again.
    const retried = await jobs().retry(id);
    expect(retried).toMatchObject({ state: 'queued', maxAttempts: 4 });
    await settled(id, 'dead');
    await expect(jobs().retry((await jobs().enqueue(slow, { ms: 10 })).id)).rejects.toMatchObject({
      code: 'GANTRY_ERR_JOB_STATE',
    });
  });

  it('deduplicates by key while the job is unfinished, and leaves no job from a rolled-back transaction', async () => {
    const a = await app.request('POST', '/slow', { key: 'customer-7' });
    const b = await app.request('POST', '/slow', { key: 'customer-7' });
    expect(a.body).toMatchObject({ deduplicated: false });
    expect(b.body).toEqual({ id: (a.body as { id: string }).id, deduplicated: true });
    expect(await jobs().list({ task: 'test.slow', state: 'queued' })).toHaveLength(1);
    await app.request('POST', '/slow', { rollback: true });
    const db = (
      app.host.runtime('worker').clients.db as { db: { execute: (q: unknown) => Promise<{ rows: unknown[] }> } }
    ).db;
    const { rows } = await db.execute(sql`select id from gantry_worker.jobs where key = 'rolled-back'`);
    expect(rows).toEqual([]);
  });

  it('validates input at enqueue and refuses tasks the service does not run', async () => {
    await expect(jobs().enqueue(flaky, { failures: 'x' } as never)).rejects.toMatchObject({
      code: 'GANTRY_ERR_TASK_INVALID_INPUT',
    });
    const stranger = defineTask('test.stranger', { input: t.Object({}) });
    await expect(jobs().enqueue(stranger, {})).rejects.toMatchObject({ code: 'GANTRY_ERR_TASK_UNDECLARED' });
  });

  it('cancels a running job: its handler sees its signal abort and its outcome is not recorded', async () => {
    const { id } = await jobs().enqueue(slow, { ms: 20_000 });
    await settled(id, 'running');
    const record = await jobs().cancel(id);
    expect(record.state).toBe('cancelled');
    await app.waitFor(() => aborted.includes(id), 'the handler to see the abort');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await jobs().get(id))?.state).toBe('cancelled');
    await expect(jobs().cancel(id)).rejects.toMatchObject({ code: 'GANTRY_ERR_JOB_STATE' });
    await expect(jobs().get('00000000-0000-4000-8000-000000000000')).resolves.toBeUndefined();
  });

  it('fires a schedule once per tick as a job, and shows its next run', async () => {
    await app.waitFor(() => ticks.length >= 2, 'two ticks', 5_000);
    expect(new Set(ticks).size).toBe(ticks.length);
    const [schedule] = await jobs().schedules();
    expect(schedule).toMatchObject({ name: 'every-second', pattern: '* * * * * *' });
    expect(Date.parse(schedule?.nextRunAt ?? '')).toBeGreaterThan(Date.now() - 1_000);
    const tickJobs = await jobs().list({ task: 'cron:every-second', state: 'succeeded' });
    expect(tickJobs.length).toBeGreaterThanOrEqual(2);
  });

  it('reports the jobs in readiness', async () => {
    const ready = await app.request('GET', '/health/ready');
    expect((ready.body as { checks: Record<string, { ok: boolean }> }).checks['worker.jobs']).toMatchObject({
      ok: true,
    });
  });

  it('answers the opt-in job routes, with authorize having the last word', async () => {
    const { id } = await jobs().enqueue(flaky, { failures: 0 });
    await settled(id, 'succeeded');
    const list = await app.request('GET', '/jobs?task=test.flaky&state=succeeded');
    expect(list.status).toBe(200);
    expect((list.body as JobRecord[]).map((r) => r.id)).toContain(id);
    const one = await app.request('GET', `/jobs/${id}`);
    expect(one.body).toMatchObject({ id, state: 'succeeded', attempts: 1 });
    expect((await app.request('GET', '/jobs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await app.request('GET', '/jobs?state=bogus')).status).toBe(400);
    const schedules = await app.request('GET', '/jobs/schedules');
    expect(schedules.body).toEqual([expect.objectContaining({ name: 'every-second', nextRunAt: expect.any(String) })]);
    expect((await app.request('POST', `/jobs/${id}/cancel`)).status).toBe(409);
    expect((await app.request('POST', `/jobs/${id}/retry`)).status).toBe(403);
  });
});
