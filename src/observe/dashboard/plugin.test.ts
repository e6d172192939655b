import { defineStream, GantryError, service, t } from 'gantry';
import { generateApiKey, requireRole } from 'gantry/auth';
import { type DashboardOptions, dashboardPlugin, observability, tracingPlugin } from 'gantry/observe';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { RequestSeries } from './series.ts';

const noteTaken = defineStream('dash-notes.taken', t.Object({ text: t.String() }));

const notes = service({ name: 'notes', version: '0.3.0' })
  .emits(noteTaken)
  .post('/notes', { body: t.Object({ text: t.String() }), response: { 202: null } }, async ({ body }, ctx) => {
    await ctx.emit(noteTaken, body);
    return undefined;
  })
  .get('/notes/broken', {}, async () => {
    throw new Error('notes are gone');
  });

const archive = service({ name: 'archive', version: '1.0.0' }).on(noteTaken, { maxAttempts: 1 }, async (note) => {
  if (note.text === 'poison') throw new Error('cannot archive');
});

describe('the dashboard plugin', () => {
  let app: TestHost;
  const tracing = tracingPlugin();

  beforeAll(async () => {
    app = await startTestHost({
      services: [notes, archive],
      plugins: [tracing, dashboardPlugin({ enabled: true, traces: tracing.store })],
    });
  });
  afterAll(async () => {
    await app.stop();
  });

  it('serves its page and assets from local files, with no outside address', async () => {
    const page = await app.request('GET', '/_gantry');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.text).toContain('src="/_gantry/assets/dashboard.js"');
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of ['dashboard.js', 'dashboard.css']) {
      const res = await app.request('GET', `/_gantry/assets/${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.text).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    }
    expect((await app.request('GET', '/_gantry/assets/..%2Fplugin.ts')).status).toBe(404);
  });

  it('shows the topology: services, their events, and who emits and consumes each stream', async () => {
    const res = await app.request('GET', '/_gantry/api/topology');
    expect(res.body).toMatchObject({
      env: 'test',
      services: [
        { name: 'notes', version: '0.3.0', emits: ['dash-notes.taken'] },
        {
          name: 'archive',
          events: [{ kind: 'consumer', stream: 'dash-notes.taken', group: 'archive' }],
        },
      ],
      streams: [
        {
          name: 'dash-notes.taken',
          producers: ['notes'],
          consumers: [{ service: 'archive', group: 'archive' }],
        },
      ],
    });
  });

  it('keeps the runs, the request series, the stream counters with dead letters, and the traces', async () => {
    await app.request('POST', '/notes', { text: 'hello' }, { 'x-request-id': 'dash-req-1' });
    await app.request('POST', '/notes', { text: 'poison' });
    await app.request('GET', '/notes/broken');
    await app.waitFor(() => app.host.counters.of('dash-notes.taken', 'archive').deadLettered === 1, 'the dead letter');

    const log = (await app.request('GET', '/_gantry/api/log')).body as { entries: Record<string, unknown>[] };
    expect(log.entries.find((e) => e.requestId === 'dash-req-1' && e.service === 'notes')).toMatchObject({
      service: 'notes',
      event: 'POST /notes',
      outcome: 'succeeded',
      status: 202,
    });
    expect(log.entries.find((e) => e.event === 'GET /notes/broken')).toMatchObject({
      outcome: 'failed',
      error: 'notes are gone',
    });

    const series = (await app.request('GET', '/_gantry/api/series')).body as {
      points: { requests: number; errors: number }[];
    };
    const totals = series.points.reduce(
      (sum, p) => ({ requests: sum.requests + p.requests, errors: sum.errors + p.errors }),
      {
        requests: 0,
        errors: 0,
      },
    );
    expect(totals).toEqual({ requests: 3, errors: 1 });

    const streams = (await app.request('GET', '/_gantry/api/streams')).body as {
      streams: Record<string, unknown>[];
      deadLetters: Record<string, unknown>[];
    };
    expect(streams.streams).toContainEqual(expect.objectContaining({ stream: 'dash-notes.taken', published: 2 }));
    expect(streams.streams).toContainEqual(
      expect.objectContaining({ stream: 'dash-notes.taken', group: 'archive', acked: 1, deadLettered: 1, lag: 0 }),
    );
    expect(streams.deadLetters[0]).toMatchObject({ stream: 'dash-notes.taken', group: 'archive' });

    const traceId = log.entries.find((e) => e.requestId === 'dash-req-1' && e.service === 'notes')?.traceId as string;
    const traces = (await app.request('GET', '/_gantry/api/traces')).body as { traces: { traceId: string }[] };
    expect(traces.traces.map((trace) => trace.traceId)).toContain(traceId);
    const trace = (await app.request('GET', `/_gantry/api/traces/${traceId}`)).body as { spans: { kind: string }[] };
    expect(trace.spans.map((s) => s.kind)).toEqual(['server', 'producer', 'consumer']);
    expect((await app.request('GET', '/_gantry/api/traces/0123')).status).toBe(404);
  });

  it('streams finished runs as server-sent events', async () => {
    const address = await app.host.listen();
    const controller = new AbortController();
    const response = await fetch(`${address}/_gantry/api/events`, { signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await app.request('POST', '/notes', { text: 'live' }, { 'x-request-id': 'dash-live-1' });
    let text = '';
    while (!/dash-live-1[^\n]*POST \/notes|POST \/notes[^\n]*dash-live-1/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const frame = text.split('\n\n').find((f) => f.includes('dash-live-1') && f.includes('POST /notes')) as string;
    expect(JSON.parse(frame.replace(/^data: /, ''))).toMatchObject({ event: 'POST /notes', status: 202 });
  });
});

describe('dashboard access', () => {
  it('is off outside dev unless enabled, and answers 404 to whoever authorize refuses', async () => {
    const off = await startTestHost({ services: [notes], plugins: observability({ errors: false }) });
    try {
      expect((await off.request('GET', '/_gantry')).status).toBe(404);
      expect((await off.request('GET', '/metrics')).status).toBe(200);
    } finally {
      await off.stop();
    }
    const guarded = await startTestHost({
      services: [notes],
      plugins: [dashboardPlugin({ enabled: true, authorize: (request) => request.headers['x-admin'] === 'yes' })],
    });
    try {
      const refused = await guarded.request('GET', '/_gantry/api/topology');
      expect(refused.status).toBe(404);
      expect(refused.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_NOT_FOUND' });
      expect((await guarded.request('GET', '/_gantry', undefined, { 'x-admin': 'yes' })).status).toBe(200);
      expect((await guarded.request('GET', '/notes/broken')).status).toBe(500);
    } finally {
      await guarded.stop();
    }
    // A guard that throws (as gantry/auth's requireRole does) answers with its error, and allows by returning nothing.
    expectTypeOf(requireRole('ops')).toExtend<NonNullable<DashboardOptions['authorize']>>();
    const thrown = await startTestHost({
      services: [notes],
      plugins: [
        dashboardPlugin({
          enabled: true,
          authorize: async (request) => {
            if (request.headers['x-admin'] !== 'yes') throw new GantryError('GANTRY_ERR_AUTH_FORBIDDEN', 'ops only');
          },
        }),
      ],
    });
    try {
      expect((await thrown.request('GET', '/_gantry/api/log')).body).toMatchObject({
        code: 'GANTRY_ERR_AUTH_FORBIDDEN',
      });
      expect((await thrown.request('GET', '/_gantry/api/log', undefined, { 'x-admin': 'yes' })).status).toBe(200);
    } finally {
      await thrown.stop();
    }
  });

  it('in prod, lets the same credential through to its own API and to the stream admin API its Replay calls', async () => {
    const ops = generateApiKey();
    const clerk = generateApiKey();
    const prod = await startTestHost({
      env: 'prod',
      services: [
        service({ name: 'quiet', version: '1.0.0' }).get('/q', { auth: 'public' }, async () => undefined),
        archive,
      ],
      plugins: [dashboardPlugin({ enabled: true, authorize: requireRole('ops') })],
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
      const paths: [string, string][] = [
        ['GET', '/_gantry/api/streams'],
        ['GET', '/_gantry/streams'],
        ['POST', `/_gantry/streams/${noteTaken.name}/dead-letters/replay?max=1`],
      ];
      for (const [method, path] of paths) {
        expect((await prod.request(method, path)).status, `${method} ${path} anonymous`).toBe(401);
        const asClerk = await prod.request(method, path, undefined, { 'x-api-key': clerk.key });
        expect(asClerk.status, `${method} ${path} without the role`).toBe(403);
        const asOps = await prod.request(method, path, undefined, { 'x-api-key': ops.key });
        expect(asOps.status, `${method} ${path} as ops: ${asOps.text}`).toBe(200);
      }
    } finally {
      await prod.stop();
    }
  });

  it('keeps a bounded series of fixed buckets, with latency percentiles', () => {
    const series = new RequestSeries(60_000, 5_000);
    const start = 1_000_000_000_000;
    for (let i = 1; i <= 100; i++) series.record(i % 10 === 0 ? 503 : 200, i, start + 100);
    series.record(404, 5, start + 70_000);
    const points = series.points(start + 70_000);
    expect(points).toHaveLength(12);
    expect(points.at(-1)).toMatchObject({ requests: 1, refused: 1, errors: 0 });
    // The first bucket aged out of the window and its slot was reused.
    expect(points.reduce((sum, p) => sum + p.requests, 0)).toBe(1);
    const fresh = new RequestSeries(60_000, 5_000);
    for (let i = 1; i <= 100; i++) fresh.record(i % 10 === 0 ? 503 : 200, i, start + 100);
    expect(fresh.points(start + 200).at(-1)).toMatchObject({ requests: 100, errors: 10, p50: 50, p95: 95, p99: 99 });
  });
});
