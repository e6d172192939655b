import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore, NewJob, StoreTransaction } from '../../src/jobs/job-store.ts';

/** What a backend gives the suite: a fresh, prepared store and a way to run a transaction on its database. */
export interface JobStoreUnderTest {
  store: JobStore;
  /** Runs `fn` in a transaction of the store's database; a throw rolls it back. */
  transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  /** Moves every running job's heartbeat `ms` into the past (so the suite need not wait for it). */
  ageHeartbeats(ms: number): Promise<void>;
  close(): Promise<void>;
}

const job = (task: string, extra: Partial<NewJob> = {}): NewJob => ({
  task,
  input: { n: 1 },
  maxAttempts: 3,
  priority: 0,
  delayMs: 0,
  ...extra,
});

/**
 * The guarantees every {@link JobStore} must keep (see `src/jobs/job-store.ts`), run against a real database for each
 * backend: PGlite in the unit tests, a PostgreSQL server in the integration tests.
 */
export function runJobStoreConformance(name: string, create: () => Promise<JobStoreUnderTest>): void {
  describe(`job store conformance: ${name}`, () => {
    let under: JobStoreUnderTest;
    let store: JobStore;
    beforeAll(async () => {
      under = await create();
      store = under.store;
      await store.prepare();
      await store.prepare(); // idempotent
    });
    afterAll(async () => under?.close());

    it('claims a queued job once, then records its success', async () => {
      const { id, deduplicated } = await store.enqueue(job('conf.simple', { input: { hello: 'world' } }));
      expect(deduplicated).toBe(false);
      expect((await store.get(id))?.state).toBe('queued');
      const [claimed, again] = await Promise.all([
        store.claim('w1', [{ task: 'conf.simple', limit: 5 }]),
        store.claim('w2', [{ task: 'conf.simple', limit: 5 }]),
      ]);
      const all = [...(claimed ?? []), ...(again ?? [])];
      expect(all.map((c) => c.id)).toEqual([id]);
      expect(all[0]).toMatchObject({ attempt: 1, input: { hello: 'world' }, maxAttempts: 3 });
      expect(await store.progress({ id, attempt: 1 }, 0.5, 'half')).toBe(true);
      expect(await store.get(id)).toMatchObject({ state: 'running', progress: 0.5, progressMessage: 'half' });
      expect(await store.complete({ id, attempt: 2 }, 'wrong attempt')).toBe(false);
      expect(await store.complete({ id, attempt: 1 }, { ok: true })).toBe(true);
      const record = await store.get(id);
      expect(record).toMatchObject({ state: 'succeeded', attempts: 1, progress: 1, result: { ok: true } });
      expect(record?.finishedAt).not.toBeNull();
      expect(await store.complete({ id, attempt: 1 }, 'twice')).toBe(false);
    });

    it('claims at most the limit of each task, highest priority first, and nothing not yet due', async () => {
      await store.enqueue(job('conf.limits', { priority: 0, input: 'low' }));
      await store.enqueue(job('conf.limits', { priority: 5, input: 'high' }));
      await store.enqueue(job('conf.limits', { priority: 1, input: 'mid' }));
      await store.enqueue(job('conf.limits', { priority: 9, delayMs: 60_000, input: 'later' }));
      await store.enqueue(job('conf.limits', { priority: 9, runAt: new Date(Date.now() + 60_000), input: 'runAt' }));
      const first = await store.claim('w1', [{ task: 'conf.limits', limit: 2 }]);
      expect(first.map((c) => c.input)).toEqual(['high', 'mid']);
      const rest = await store.claim('w1', [{ task: 'conf.limits', limit: 10 }]);
      expect(rest.map((c) => c.input)).toEqual(['low']);
    });

    it('keeps one unfinished job per key, and frees the key when it finishes', async () => {
      const a = await store.enqueue(job('conf.keyed', { key: 'k1' }));
      const b = await store.enqueue(job('conf.keyed', { key: 'k1' }));
      expect(b).toEqual({ id: a.id, deduplicated: true });
      const other = await store.enqueue(job('conf.keyed', { key: 'k2' }));
      expect(other.deduplicated).toBe(false);
      const [claimed] = await store.claim('w1', [{ task: 'conf.keyed', limit: 1 }]);
      expect(claimed?.id).toBe(a.id);
      expect((await store.enqueue(job('conf.keyed', { key: 'k1' }))).id).toBe(a.id); // running holds the key
      await store.complete({ id: a.id, attempt: 1 }, null);
      const c = await store.enqueue(job('conf.keyed', { key: 'k1' }));
      expect(c.deduplicated).toBe(false);
      expect(c.id).not.toBe(a.id);
    });

    it('stores a job enqueued in a transaction only if the transaction commits', async () => {
      await expect(
        under.transaction(async (tx) => {
          await store.enqueue(job('conf.tx', { key: 'rolled-back' }), tx);
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect(await store.list({ task: 'conf.tx' })).toEqual([]);
      const { id } = await under.transaction((tx) => store.enqueue(job('conf.tx', { key: 'committed' }), tx));
      expect((await store.list({ task: 'conf.tx' })).map((r) => r.id)).toEqual([id]);
    });

    it('retries a failed attempt after its delay, then kills the job and enqueues its on-fail task together', async () => {
      const { id } = await store.enqueue(job('conf.failing', { maxAttempts: 2, onFail: 'conf.on-fail' }));
      const [first] = await store.claim('w1', [{ task: 'conf.failing', limit: 1 }]);
      const error = { code: 'GANTRY_ERR_INTERNAL', message: 'boom', retryable: false };
      expect(await store.fail({ id, attempt: 1 }, error, { kind: 'retry', delayMs: 60_000 })).toBe(true);
      const retrying = await store.get(id);
      expect(retrying).toMatchObject({ state: 'retrying', attempts: 1, lastError: error });
      expect(retrying?.failures).toHaveLength(1);
      expect(Date.parse(retrying?.runAt ?? '') - Date.parse(retrying?.failures[0]?.failedAt ?? '')).toBeGreaterThan(
        59_000,
      );
      expect(await store.claim('w1', [{ task: 'conf.failing', limit: 1 }])).toEqual([]); // not due yet
      expect(first?.attempt).toBe(1);
      expect(await store.fail({ id, attempt: 1 }, error, { kind: 'retry', delayMs: 0 })).toBe(false); // not running
      await store.retry(id, 0); // not dead: unchanged
      expect((await store.get(id))?.state).toBe('retrying');
      // Cancel the waiting retry, then revive it: the second attempt fails for good.
      expect(await store.fail({ id, attempt: 1 }, error, { kind: 'dead' })).toBe(false);
      await store.cancel(id);
      await store.retry(id, 1);
      const [second] = await store.claim('w1', [{ task: 'conf.failing', limit: 1 }]);
      expect(second?.attempt).toBe(2);
      const dead = await store.fail({ id, attempt: 2 }, error, {
        kind: 'dead',
        onFail: { task: 'conf.on-fail', maxAttempts: 1, priority: 0 },
      });
      expect(dead).toBe(true);
      const record = await store.get(id);
      expect(record).toMatchObject({ state: 'dead', attempts: 2 });
      expect(record?.failures.map((f) => f.attempt)).toEqual([1, 2]);
      const [spawned] = await store.list({ task: 'conf.on-fail' });
      expect(spawned?.input).toEqual({
        jobId: id,
        task: 'conf.failing',
        input: { n: 1 },
        attempts: 2,
        error: { code: 'GANTRY_ERR_INTERNAL', message: 'boom' },
      });
      const revived = await store.retry(id, 3);
      expect(revived).toMatchObject({ state: 'queued', maxAttempts: 5, finishedAt: null });
    });

    it('heartbeats its own running attempts and reports the ones it lost', async () => {
      const a = await store.enqueue(job('conf.beat'));
      const b = await store.enqueue(job('conf.beat'));
      const claimed = await store.claim('beater', [{ task: 'conf.beat', limit: 2 }]);
      expect(claimed).toHaveLength(2);
      await store.cancel(b.id);
      const mine = await store.heartbeat('beater', [
        { id: a.id, attempt: 1 },
        { id: b.id, attempt: 1 },
      ]);
      expect([...mine]).toEqual([a.id]);
      expect(await store.heartbeat('someone-else', [{ id: a.id, attempt: 1 }])).toEqual(new Set());
      expect(await store.stale(60_000, 10)).not.toContainEqual(expect.objectContaining({ id: a.id }));
      await under.ageHeartbeats(120_000);
      expect(await store.stale(60_000, 100)).toContainEqual(
        expect.objectContaining({ id: a.id, attempt: 1, worker: 'beater', task: 'conf.beat' }),
      );
    });

    it('cancels unfinished jobs only', async () => {
      const { id } = await store.enqueue(job('conf.cancel'));
      expect((await store.cancel(id))?.state).toBe('cancelled');
      expect(await store.claim('w1', [{ task: 'conf.cancel', limit: 1 }])).toEqual([]);
      const done = await store.enqueue(job('conf.cancel'));
      await store.claim('w1', [{ task: 'conf.cancel', limit: 1 }]);
      await store.complete({ id: done.id, attempt: 1 }, 1);
      expect((await store.cancel(done.id))?.state).toBe('succeeded');
      expect(await store.cancel('00000000-0000-4000-8000-000000000000')).toBeUndefined();
      expect(await store.get('not-a-uuid')).toBeUndefined();
    });

    it('fires each schedule tick once, however many instances try', async () => {
      const tick = new Date('2030-01-01T03:00:00.000Z');
      expect(
        await store.saveSchedule({ name: 'conf-nightly', pattern: '0 3 * * *', timezone: null, nextRunAt: tick }),
      ).toBeNull();
      const results = await Promise.all(
        [1, 2, 3, 4].map(() =>
          store.fireTick(
            'conf-nightly',
            tick,
            job('cron:conf-nightly', { input: { scheduledAt: tick.toISOString() } }),
          ),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(await store.list({ task: 'cron:conf-nightly' })).toHaveLength(1);
      expect(
        await store.saveSchedule({ name: 'conf-nightly', pattern: '0 3 * * *', timezone: null, nextRunAt: null }),
      ).toEqual(tick);
      expect(await store.schedules()).toContainEqual(
        expect.objectContaining({ name: 'conf-nightly', lastTickAt: tick.toISOString() }),
      );
    });

    it('lists newest first with filters and pages, and purges finished jobs past their time', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await store.enqueue(job('conf.list', { input: i }))).id);
      const all = await store.list({ task: 'conf.list' });
      expect(all.map((r) => r.input)).toEqual([2, 1, 0]);
      const page = await store.list({ task: 'conf.list', limit: 1, before: all[0]?.id as string });
      expect(page.map((r) => r.input)).toEqual([1]);
      expect(await store.list({ task: 'conf.list', state: 'running' })).toEqual([]);
      await store.cancel(ids[0] as string);
      expect(await store.purge(3_600_000)).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await store.purge(1)).toBeGreaterThan(0);
      expect(await store.get(ids[0] as string)).toBeUndefined();
      expect(await store.get(ids[1] as string)).toBeDefined();
    });
  });
}
