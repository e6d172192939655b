import { defineStream, notFound, service, t } from 'gantry';
import { metricsPlugin } from 'gantry/observe';
import { startTestHost, type TestHost, testContext } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (comments skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const itemAdded = defineStream('items.added', t.Object({ id: t.String() }));
let gate: Promise<void> = Promise.resolve();

const items = service({ name: 'items', version: '1.2.3' })
  .emits(itemAdded)
  .get(
    '/items/:id',
    { params: t.Object({ id: t.String() }), response: t.Object({ id: t.String() }) },
    async ({ params }, ctx) => {
      if (params.id === 'missing') throw notFound('no such item');
      ctx.metrics
        .counter('items_viewed_total', 'Items viewed', ['shelf'])
        .inc({ shelf: params.id.startsWith('a') ? 'a' : 'b' });
      return { id: params.id };
    },
  )
  .post('/items', { body: t.Object({ id: t.String() }), response: { 201: null } }, async ({ body }, ctx) => {
    await ctx.emit(itemAdded, body);
    return undefined;
  })
  .get('/boom', {}, async () => {
    throw new Error('kaboom');
  })
  .get('/labels/:value', { params: t.Object({ value: t.String() }) }, async ({ params }, ctx) => {
    ctx.metrics.counter('labelled_total', 'Many labels', ['value']).inc({ value: params.value });
    return undefined;
  })
  .get('/bad-metric', {}, async (_input, ctx) => {
    ctx.metrics.gauge('items_viewed_total', 'Same name, other type');
    return undefined;
  });

const stock = service({ name: 'stock', version: '1.0.0' }).on(itemAdded, { concurrency: 1 }, async () => {
  await gate;
});

describe('the metrics plugin', () => {
  let app: TestHost;
  const metrics = metricsPlugin({ maxSeries: 3 });

  beforeAll(async () => {
    app = await startTestHost({ services: [items, stock], plugins: [metrics] });
  });
  afterAll(async () => {
    await app.stop();
  });

  async function scrape(): Promise<Sample[]> {
    const res = await app.request('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    return parse(res.text);
  }

  it('records request durations by route template and status, never by raw path', async () => {
    for (const id of ['a1', 'a2', 'b1']) expect((await app.request('GET', `/items/${id}`)).status).toBe(200);
    expect((await app.request('GET', '/items/missing')).status).toBe(404);
    expect((await app.request('GET', '/no/such/path')).status).toBe(404);
    expect((await app.request('GET', '/boom')).status).toBe(500);
    const res = await app.request('GET', '/metrics');
    expect(res.text).not.toContain('a1');
    expect(res.text).not.toContain('/no/such/path');
    const samples = parse(res.text);
    const ok = { method: 'GET', route: '/items/:id', status: '200' };
    expect(value(samples, 'gantry_http_request_duration_seconds_count', ok)).toBe(3);
    expect(value(samples, 'gantry_http_request_duration_seconds_bucket', { ...ok, le: '+Inf' })).toBe(3);
    expect(value(samples, 'gantry_http_request_duration_seconds_bucket', { ...ok, le: '10' })).toBe(3);
    const buckets = samples.filter(
      (s) =>
        s.name === 'gantry_http_request_duration_seconds_bucket' &&
        s.labels.route === '/items/:id' &&
        s.labels.status === '200',
    );
    expect(buckets.map((s) => s.labels.le)).toEqual([
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
    expect(value(samples, 'gantry_http_request_duration_seconds_count', { route: '/items/:id', status: '404' })).toBe(
      1,
    );
    expect(value(samples, 'gantry_http_request_duration_seconds_count', { route: 'unmatched', status: '404' })).toBe(1);
    expect(value(samples, 'gantry_http_request_duration_seconds_count', { route: '/boom', status: '500' })).toBe(1);
  });

  it('counts event runs started, succeeded and failed, with their durations', async () => {
    const samples = await scrape();
    const event = { kind: 'http', service: 'items', event: 'GET /items/:id' };
    expect(value(samples, 'gantry_events_started_total', event)).toBe(4);
    expect(value(samples, 'gantry_events_succeeded_total', event)).toBe(3);
    expect(value(samples, 'gantry_events_failed_total', event)).toBe(1);
    expect(value(samples, 'gantry_event_duration_seconds_count', { ...event, outcome: 'succeeded' })).toBe(3);
    expect(value(samples, 'gantry_events_failed_total', { event: 'GET /boom' })).toBe(1);
  });

  it('records custom metrics from handlers with a service label, bounding their label values', async () => {
    let samples = await scrape();
    expect(value(samples, 'items_viewed_total', { shelf: 'a', service: 'items' })).toBe(2);
    expect(value(samples, 'items_viewed_total', { shelf: 'b', service: 'items' })).toBe(1);
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v5']) await app.request('GET', `/labels/${v}`);
    samples = await scrape();
    const series = samples.filter((s) => s.name === 'labelled_total').map((s) => s.labels.value);
    expect(series.sort()).toEqual(['_other', 'v1', 'v2', 'v3']);
    expect(value(samples, 'labelled_total', { value: '_other' })).toBe(2);
    const bad = await app.request('GET', '/bad-metric');
    expect(bad.status).toBe(500);
    expect(app.logs.lines.some((l) => JSON.stringify(l).includes('GANTRY_ERR_METRIC_INVALID'))).toBe(true);
  });

  it('reads stream counters and lag at scrape time', async () => {
    let release: () => void = () => undefined;
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const id of ['s1', 's2', 's3']) {
      const res = await app.request('POST', '/items', { id });
      expect(res.status, res.text).toBe(201);
    }
    await app.waitFor(() => app.host.counters.of('items.added', 'stock').delivered >= 1, 'the first delivery');
    let samples = await scrape();
    expect(value(samples, 'gantry_stream_published_total', { stream: 'items.added' })).toBe(3);
    expect(value(samples, 'gantry_stream_lag', { stream: 'items.added', group: 'stock' })).toBe(3);
    release();
    await app.waitFor(() => app.host.counters.of('items.added', 'stock').acked === 3, 'all acks');
    samples = await scrape();
    const group = { stream: 'items.added', group: 'stock' };
    expect(value(samples, 'gantry_stream_delivered_total', group)).toBe(3);
    expect(value(samples, 'gantry_stream_acked_total', group)).toBe(3);
    expect(value(samples, 'gantry_stream_retried_total', group)).toBe(0);
    expect(value(samples, 'gantry_stream_dead_lettered_total', group)).toBe(0);
    expect(value(samples, 'gantry_stream_lag', group)).toBe(0);
    expect(value(samples, 'gantry_events_succeeded_total', { kind: 'consumer', service: 'stock' })).toBe(3);
  });

  it('has process and event-loop metrics in its own registry, not the global one', async () => {
    const samples = await scrape();
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
    const other = metricsPlugin({ defaultMetrics: false });
    expect(other.registry).not.toBe(metrics.registry);
    expect(
      await other.registry.getSingleMetricAsString('gantry_http_request_duration_seconds').catch(() => 'none'),
    ).toBe('none');
    const { register } = await import('prom-client');
    expect(register.getMetricsAsArray().some((m) => m.name.startsWith('gantry_'))).toBe(false);
  });
});

describe('ctx.metrics types', () => {
  it('types label values by the label names given', () => {
    const ctx = testContext();
    const counter = ctx.metrics.counter('typed_total', 'Typed', ['country', 'plan']);
    expectTypeOf(counter.inc)
      .parameter(0)
      .toEqualTypeOf<Readonly<Partial<Record<'country' | 'plan', string | number>>> | undefined>();
    counter.inc({ country: 'fr', plan: 2 });
    // @ts-expect-error: 'city' is not a label of this counter
    counter.inc({ city: 'Paris' });
    const histogram = ctx.metrics.histogram('typed_seconds', 'Typed', { labels: ['route'], buckets: [0.1, 1] });
    histogram.observe(0.2, { route: '/x' });
    // @ts-expect-error: observe takes the value first
    histogram.observe({ route: '/x' }, 0.2);
  });
});
