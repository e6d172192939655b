import { defineStream, notFound, service, t } from 'gantry';
import { generateApiKey } from 'gantry/auth';
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

/** A sample value or bound as Go's ParseFloat reads it. */
function floatOf(raw: string): number {
  const special = raw.toLowerCase().replace(/inity$/, '');
  if (special === 'nan') return Number.NaN;
  if (special === 'inf' || special === '+inf') return Number.POSITIVE_INFINITY;
  if (special === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(raw);
}

/**
 * Parses Prometheus text exposition (format 0.0.4) strictly: every sample belongs to a family declared by `# TYPE`
 * before it, samples of a family are contiguous, names, labels, escapes and values are well formed, no series
 * repeats, and each histogram's buckets are cumulative and end at `+Inf` equal to its `_count`.
 */
function parseStrict(text: string): Sample[] {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;
  // Go's ParseFloat, which Prometheus uses: special values in any case (prom-client writes `Nan`).
  const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
  const SUFFIXES: Record<string, string[]> = {
    counter: [''],
    gauge: [''],
    untyped: [''],
    histogram: ['_bucket', '_sum', '_count'],
    summary: ['', '_sum', '_count'],
  };
  const types = new Map<string, string>();
  const finished = new Set<string>();
  const seen = new Set<string>();
  const samples: Sample[] = [];
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!meta) continue; // a plain comment
      const [, keyword, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      if (keyword === 'TYPE') {
        if (types.has(name)) throw new Error(`second TYPE for ${name}`);
        if (!(rest in SUFFIXES)) throw new Error(`unknown type in: ${line}`);
        types.set(name, rest);
      }
      continue;
    }
    if (line.trim() === '') continue; // the format ignores empty lines (prom-client puts one between families)
    const match = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!match) throw new Error(`unparsable sample: ${line}`);
    const [, name, labelText = '', raw] = match as unknown as [string, string, string | undefined, string];
    if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
    if (!VALUE.test(raw)) throw new Error(`bad value: ${line}`);
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const start = LABEL.lastIndex;
      const pair = LABEL.exec(labelText);
      if (!pair || pair.index !== start) throw new Error(`bad labels: ${line}`);
      const [, key, escaped] = pair as unknown as [string, string, string];
      if (key in labels) throw new Error(`label ${key} twice: ${line}`);
      labels[key] = escaped.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    }
    const family = [...types.keys()].find((f) => (SUFFIXES[types.get(f) as string] ?? []).some((s) => f + s === name));
    if (family === undefined) throw new Error(`sample of an undeclared family: ${line}`);
    if (family !== current) {
      if (finished.has(family)) throw new Error(`samples of ${family} are not contiguous`);
      if (current !== undefined) finished.add(current);
      current = family;
    }
    const key = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`;
    if (seen.has(key)) throw new Error(`series twice: ${key}`);
    seen.add(key);
    samples.push({ name, labels, value: floatOf(raw) });
  }
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const sample of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le, ...rest } = sample.labels;
      if (le === undefined) throw new Error(`${family}_bucket without le`);
      const id = JSON.stringify(rest);
      series.set(id, [...(series.get(id) ?? []), sample]);
    }
    for (const [id, buckets] of series) {
      const bounds = buckets.map((b) => floatOf(b.labels.le as string));
      if (bounds.at(-1) !== Number.POSITIVE_INFINITY) throw new Error(`${family}${id}: no +Inf bucket`);
      for (let i = 1; i < buckets.length; i++) {
        if ((bounds[i] as number) <= (bounds[i - 1] as number)) throw new Error(`${family}${id}: le out of order`);
        if ((buckets[i] as Sample).value < (buckets[i - 1] as Sample).value) {
          throw new Error(`${family}${id}: buckets not cumulative`);
        }
      }
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === id);
      if (count?.value !== buckets.at(-1)?.value) throw new Error(`${family}${id}: +Inf bucket is not _count`);
    }
  }
  return samples;
}

describe('the strict exposition parser', () => {
  it('refuses what Prometheus would refuse', () => {
    const ok = '# TYPE a_total counter\na_total{x="1"} 2\n';
    expect(parseStrict(ok)).toEqual([{ name: 'a_total', labels: { x: '1' }, value: 2 }]);
    expect(() => parseStrict('a_total 1\n')).toThrow(/undeclared/);
    expect(() => parseStrict('# TYPE a_total counter\na_total{x="1} 2\n')).toThrow(/bad labels|unparsable/);
    expect(() => parseStrict('# TYPE a_total counter\na_total 1,5\n')).toThrow(/bad value/);
    expect(() => parseStrict('# TYPE a_total counter\na_total 1\na_total 2\n')).toThrow(/series twice/);
    expect(() => parseStrict(ok.trimEnd())).toThrow(/newline/);
    const histogram = '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 3\nh_count 1\n';
    expect(() => parseStrict(histogram)).toThrow(/cumulative/);
  });
});

const entryBooked = defineStream('metrics-ledger.booked', t.Object({ id: t.String() }));
const ledger = service({ name: 'ledger', version: '1.0.0' })
  .emits(entryBooked)
  .get(
    '/entries/:id',
    { params: t.Object({ id: t.String() }), response: t.Object({ id: t.String() }) },
    async ({ params }) => {
      if (params.id.startsWith('missing')) throw notFound('no such entry');
      return { id: params.id };
    },
  )
  .post('/entries', { body: t.Object({ id: t.String() }), response: { 201: null } }, async ({ body }, ctx) => {
    await ctx.emit(entryBooked, body);
    return undefined;
  });
const audited: string[] = [];
const audit = service({ name: 'audit', version: '1.0.0' }).on(entryBooked, { concurrency: 4 }, async (entry) => {
  audited.push(entry.id);
});

describe('/metrics after a scripted load', () => {
  it('is valid exposition whose counters equal the requests and messages sent', async () => {
    const app = await startTestHost({ services: [ledger, audit], plugins: [metricsPlugin()] });
    try {
      const found = 40;
      const missing = 7;
      const booked = 15;
      const statuses = await Promise.all([
        ...Array.from({ length: found }, (_, i) => app.request('GET', `/entries/e${i}`)),
        ...Array.from({ length: missing }, (_, i) => app.request('GET', `/entries/missing${i}`)),
        ...Array.from({ length: booked }, (_, i) => app.request('POST', '/entries', { id: `b${i}` })),
      ]).then((responses) => responses.map((r) => r.status));
      expect(statuses.filter((s) => s === 200)).toHaveLength(found);
      expect(statuses.filter((s) => s === 404)).toHaveLength(missing);
      expect(statuses.filter((s) => s === 201)).toHaveLength(booked);
      await app.waitFor(() => audited.length === booked, 'every booking audited', 15_000);
      await app.waitFor(() => app.host.counters.of(entryBooked.name, 'audit').acked === booked, 'every ack', 15_000);

      const res = await app.request('GET', '/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toContain('text/plain; version=0.0.4');
      const samples = parseStrict(res.text);
      const get = { method: 'GET', route: '/entries/:id' };
      expect(value(samples, 'gantry_http_request_duration_seconds_count', { ...get, status: '200' })).toBe(found);
      expect(value(samples, 'gantry_http_request_duration_seconds_count', { ...get, status: '404' })).toBe(missing);
      const post = { method: 'POST', route: '/entries', status: '201' };
      expect(value(samples, 'gantry_http_request_duration_seconds_count', post)).toBe(booked);
      const lookup = { kind: 'http', service: 'ledger', event: 'GET /entries/:id' };
      expect(value(samples, 'gantry_events_started_total', lookup)).toBe(found + missing);
      expect(value(samples, 'gantry_events_succeeded_total', lookup)).toBe(found);
      expect(value(samples, 'gantry_events_failed_total', lookup)).toBe(missing);
      const stream = { stream: entryBooked.name };
      expect(value(samples, 'gantry_stream_published_total', stream)).toBe(booked);
      const group = { ...stream, group: 'audit' };
      expect(value(samples, 'gantry_stream_delivered_total', group)).toBe(booked);
      expect(value(samples, 'gantry_stream_acked_total', group)).toBe(booked);
      expect(value(samples, 'gantry_stream_dead_lettered_total', group)).toBe(0);
      expect(value(samples, 'gantry_stream_lag', group)).toBe(0);
      expect(value(samples, 'gantry_events_succeeded_total', { kind: 'consumer', service: 'audit' })).toBe(booked);
    } finally {
      await app.stop();
    }
  });
});

describe('who may scrape /metrics', () => {
  const open = service({ name: 'open', version: '1.0.0' }).get('/ping', { auth: 'public' }, async () => undefined);

  it('is open in dev', async () => {
    const dev = await startTestHost({ env: 'dev', services: [open], plugins: [metricsPlugin()] });
    try {
      const res = await dev.request('GET', '/metrics');
      expect(res.status).toBe(200);
      expect(parseStrict(res.text).length).toBeGreaterThan(0);
    } finally {
      await dev.stop();
    }
  });

  it('requires the ops role in prod', async () => {
    const ops = generateApiKey();
    const clerk = generateApiKey();
    const prod = await startTestHost({
      env: 'prod',
      services: [open],
      plugins: [metricsPlugin()],
      config: {
        host: {
          allowEmbedded: true,
          auth: {
            apiKeys: [
              { id: 'ops', hash: ops.hash, roles: ['ops'] },
              { id: 'clerk', hash: clerk.hash },
            ],
          },
        },
      },
    });
    try {
      const anonymous = await prod.request('GET', '/metrics');
      expect(anonymous.status).toBe(401);
      expect(anonymous.text).not.toContain('gantry_');
      expect((await prod.request('GET', '/metrics', undefined, { 'x-api-key': clerk.key })).status).toBe(403);
      const scrape = await prod.request('GET', '/metrics', undefined, { 'x-api-key': ops.key });
      expect(scrape.status).toBe(200);
      expect(parseStrict(scrape.text).some((s) => s.name === 'gantry_http_request_duration_seconds_count')).toBe(true);
    } finally {
      await prod.stop();
    }
  });
});
