import { defineStream, service, t } from 'gantry';
import { dashboardPlugin, metricsPlugin } from 'gantry/observe';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directory } from '../../../test/fixtures/calls/services.ts';
import { database } from '../../db/database.ts';
import { defineTask } from '../../jobs/task.ts';

const migrations = new URL('../../../test/fixtures/jobs-migrations', import.meta.url);
const noted = defineStream('notes.added', t.Object({ n: t.Integer() }));
const quick = defineTask('metrics.quick', { input: t.Object({ n: t.Integer() }) });
const later = defineTask('metrics.later', { input: t.Object({ n: t.Integer() }) });

/** Calls the directory (one answer, one failure), enqueues jobs and emits through its outbox. */
const worker = service({ name: 'worker', version: '1.0.0', drivers: { db: database({ schema: {}, migrations }) } })
  .emits(noted)
  .jobs({ pollMs: 25 })
  .task(quick, async () => undefined)
  .task(later, async () => undefined)
  .post('/call', { auth: 'public', response: t.Object({ failed: t.Boolean() }) }, async (_input, ctx) => {
    await ctx.client(directory).get('/customers/:id', { params: { id: 'ada' } });
    try {
      await ctx.client(directory).get('/flaky');
      return { failed: false };
    } catch {
      return { failed: true };
    }
  })
  .post('/jobs', { auth: 'public', response: { 201: null } }, async (_input, ctx) => {
    await ctx.enqueue(quick, { n: 1 });
    await ctx.enqueue(quick, { n: 2 });
    await ctx.enqueue(later, { n: 3 }, { delay: 3_600_000 });
    return undefined;
  })
  .post('/notes', { auth: 'public', response: { 201: null } }, async (_input, ctx) => {
    await ctx.drivers.db.db.transaction(async (tx) => {
      for (let n = 0; n < 3; n++) await ctx.emit(noted, { n }, { tx });
    });
    return undefined;
  });

/** The value of the sample `name{labels}` in Prometheus text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      found[pair[1] as string] = pair[2] as string;
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe('metrics and the dashboard view of calls, jobs and the outbox', () => {
  let app: TestHost;
  const scrape = async (): Promise<string> => (await app.request('GET', '/metrics')).text;

  beforeAll(async () => {
    // The relay waits (test-only hold), so what the outbox holds can be counted.
    process.env.GANTRY_OUTBOX_RELAY_HOLD_MS = '600000';
    app = await startTestHost({
      services: [directory, worker],
      plugins: [metricsPlugin({ defaultMetrics: false }), dashboardPlugin({ enabled: true })],
      config: { host: { auth: { serviceSecret: 'a-test-secret-of-at-least-32-characters' } } },
    });
    delete process.env.GANTRY_OUTBOX_RELAY_HOLD_MS;
  });
  afterAll(async () => app?.stop());

  it('counts call outcomes and shows each breaker state', async () => {
    expect((await app.request('POST', '/call')).body).toEqual({ failed: true });
    const text = await scrape();
    expect(sample(text, 'gantry_call_outcomes_total', { target: 'directory', outcome: 'succeeded' })).toBe(1);
    expect(sample(text, 'gantry_call_outcomes_total', { target: 'directory', outcome: 'failed' })).toBe(1);
    expect(sample(text, 'gantry_call_outcomes_total', { target: 'directory', outcome: 'fell_back' })).toBe(0);
    const states = ['closed', 'half-open', 'open'].map((state) =>
      sample(text, 'gantry_call_breaker_state', { target: 'directory', state }),
    );
    expect(states.reduce((sum, n) => (sum ?? 0) + (n ?? 0), 0)).toBe(1);
    expect(sample(text, 'gantry_calls_in_flight', { target: 'directory' })).toBe(0);
  });

  it('counts jobs by state and how long they waited once due', async () => {
    expect((await app.request('POST', '/jobs')).status).toBe(201);
    await app.waitFor(
      async () => sample(await scrape(), 'gantry_jobs', { task: 'metrics.quick', state: 'succeeded' }) === 2,
      'both quick jobs succeeded',
    );
    const text = await scrape();
    expect(sample(text, 'gantry_jobs', { service: 'worker', task: 'metrics.quick', state: 'queued' })).toBe(0);
    expect(sample(text, 'gantry_jobs', { service: 'worker', task: 'metrics.later', state: 'queued' })).toBe(1);
    expect(sample(text, 'gantry_jobs', { service: 'worker', task: 'metrics.later', state: 'succeeded' })).toBe(0);
    expect(sample(text, 'gantry_job_queue_seconds_count', { service: 'worker', task: 'metrics.quick' })).toBe(2);
    const waited = sample(text, 'gantry_job_queue_seconds_sum', { service: 'worker', task: 'metrics.quick' });
    expect(waited).toBeGreaterThanOrEqual(0);
    expect(waited).toBeLessThan(10);
  });

  it('counts the messages waiting in an outbox', async () => {
    expect(sample(await scrape(), 'gantry_outbox_backlog', { service: 'worker' })).toBe(0);
    expect((await app.request('POST', '/notes')).status).toBe(201);
    expect(sample(await scrape(), 'gantry_outbox_backlog', { service: 'worker' })).toBe(3);
  });

  it('shows the same figures on the dashboard, and the called target in its topology', async () => {
    const topology = await app.request('GET', '/_gantry/api/topology');
    expect(topology.body).toMatchObject({ calls: [{ target: 'directory', breaker: 'closed' }], instances: [] });
    const { body } = await app.request('GET', '/_gantry/api/work');
    expect(body).toMatchObject({
      calls: [{ target: 'directory', breaker: 'closed', succeeded: 1, failed: 1, fellBack: 0, inFlight: 0 }],
      outbox: [{ service: 'worker', unsent: 3 }],
    });
    const jobs = (body as { jobs: { task: string; state: string; count: number }[] }).jobs;
    expect(jobs).toEqual(
      expect.arrayContaining([
        { service: 'worker', task: 'metrics.quick', state: 'succeeded', count: 2 },
        { service: 'worker', task: 'metrics.later', state: 'queued', count: 1 },
      ]),
    );
  });
});
