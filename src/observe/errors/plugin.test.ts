import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { defineStream, notFound, service, t } from 'gantry';
import { type SentryPlugin, sentryPlugin } from 'gantry/observe';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSampleRate } from './plugin.ts';

/** One error event as the Sentry SDK posted it to the ingest endpoint. */
interface ReceivedEvent {
  project: string;
  event: {
    environment?: string;
    tags?: Record<string, string>;
    contexts?: { trace?: { trace_id?: string; span_id?: string } };
    exception?: { values?: { type?: string; value?: string }[] };
  };
}

/** A local stand-in for Sentry's ingest: it keeps the error events of every envelope posted to /api/<project>/envelope/. */
function ingest(): { server: Server; events: ReceivedEvent[] } {
  const events: ReceivedEvent[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      const project = /^\/api\/(\w+)\/envelope\/?/.exec(request.url ?? '')?.[1];
      const lines = body.split('\n').filter((line) => line !== '');
      // An envelope is a header line, then item header and item payload lines in turn.
      for (let i = 1; i + 1 < lines.length; i += 2) {
        const item = JSON.parse(lines[i] as string) as { type?: string };
        if (item.type === 'event' && project !== undefined) {
          events.push({ project, event: JSON.parse(lines[i + 1] as string) as ReceivedEvent['event'] });
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return { server, events };
}

const jobFailed = defineStream('sentry-jobs.failed', t.Object({ id: t.String() }));
let loopRuns = 0;

const billing = service({ name: 'billing', version: '3.1.4' })
  .emits(jobFailed)
  .get('/invoices/crash', {}, async () => {
    throw new Error('ledger unreachable');
  })
  .get('/invoices/missing', {}, async () => {
    throw notFound('no invoice');
  })
  .get('/invoices/ok', {}, async () => undefined)
  .post('/jobs', { body: t.Object({ id: t.String() }), response: { 202: null } }, async ({ body }, ctx) => {
    await ctx.emit(jobFailed, body);
    return undefined;
  })
  .on(jobFailed, { maxAttempts: 1 }, async (job) => {
    throw new Error(`job ${job.id} broke`);
  })
  .loop(
    'reconcile',
    async (ctx) => {
      loopRuns++;
      if (loopRuns === 1) throw new Error('reconcile crashed');
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    },
    { restartDelayMs: 10 },
  );

describe('error reporting to Sentry', () => {
  const { server, events } = ingest();
  let port = 0;
  let app: TestHost;
  let reporter: SentryPlugin;
  const sentry = sentryPlugin({ variables: {} });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    reporter = sentryPlugin({ dsn: `http://publickey@127.0.0.1:${port}/42`, environment: 'qa' });
    app = await startTestHost({ services: [billing], plugins: [reporter, sentry] });
  });
  afterAll(async () => {
    await app.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends a failing event with its service, version, environment and request and trace ids', async () => {
    const res = await app.request('GET', '/invoices/crash', undefined, { 'x-request-id': 'sentry-req-1' });
    expect(res.status).toBe(500);
    expect(await reporter.flush()).toBe(true);
    await app.waitFor(() => events.some((e) => e.event.tags?.request_id === 'sentry-req-1'), 'the error event');
    const received = events.find((e) => e.event.tags?.request_id === 'sentry-req-1');
    const start = app.logs.where('requestId', 'sentry-req-1').find((l) => l.msg === 'START');
    expect(received?.project).toBe('42');
    expect(received?.event.environment).toBe('qa');
    expect(received?.event.tags).toMatchObject({
      service: 'billing',
      version: '3.1.4',
      event: 'GET /invoices/crash',
      event_kind: 'http',
      request_id: 'sentry-req-1',
      trace_id: start?.traceId,
      span_id: start?.spanId,
      status: '500',
    });
    expect(received?.event.contexts?.trace?.trace_id).toBe(start?.traceId);
    expect(received?.event.exception?.values?.[0]).toMatchObject({ type: 'Error', value: 'ledger unreachable' });
  });

  it('sends failing consumers and crashed loops, and no refusals or successes', async () => {
    await app.request('GET', '/invoices/missing', undefined, { 'x-request-id': 'sentry-req-404' });
    await app.request('GET', '/invoices/ok', undefined, { 'x-request-id': 'sentry-req-200' });
    await app.request('POST', '/jobs', { id: 'j-1' });
    await app.waitFor(async () => {
      await reporter.flush();
      return (
        events.some((e) => e.event.tags?.event_kind === 'consumer') &&
        events.some((e) => e.event.tags?.event_kind === 'loop')
      );
    }, 'the consumer and loop errors');
    const consumer = events.find((e) => e.event.tags?.event_kind === 'consumer');
    expect(consumer?.event.tags).toMatchObject({ service: 'billing', event: 'on sentry-jobs.failed (billing)' });
    expect(consumer?.event.exception?.values?.[0]?.value).toBe('job j-1 broke');
    const loop = events.find((e) => e.event.tags?.event_kind === 'loop');
    expect(loop?.event.tags).toMatchObject({ event: 'loop reconcile', version: '3.1.4' });
    expect(loop?.event.exception?.values?.[0]?.value).toBe('reconcile crashed');
    const ids = events.map((e) => e.event.tags?.request_id);
    expect(ids).not.toContain('sentry-req-404');
    expect(ids).not.toContain('sentry-req-200');
  });

  it('applies the sample rate of the environment, and does nothing without a DSN', async () => {
    const muted = sentryPlugin({ dsn: `http://publickey@127.0.0.1:${port}/43`, sampleRate: { test: 0, prod: 1 } });
    const other = await startTestHost({ services: [billing], plugins: [muted] });
    try {
      for (let i = 0; i < 5; i++) await other.request('GET', '/invoices/crash');
      expect(await muted.flush()).toBe(true);
      await app.request('GET', '/invoices/crash', undefined, { 'x-request-id': 'sentry-req-after' });
      await reporter.flush();
      await app.waitFor(() => events.some((e) => e.event.tags?.request_id === 'sentry-req-after'), 'the control event');
      expect(events.filter((e) => e.project === '43')).toEqual([]);
    } finally {
      await other.stop();
    }
    expect(await sentry.flush()).toBe(true);
    expect(resolveSampleRate({ prod: 0.25 }, 'prod', '0.9')).toBe(0.25);
    expect(resolveSampleRate({ prod: 0.25 }, 'dev', '0.9')).toBe(0.9);
    expect(resolveSampleRate(undefined, 'dev', undefined)).toBe(1);
    expect(resolveSampleRate(2, 'dev', undefined)).toBe(1);
  });
});
