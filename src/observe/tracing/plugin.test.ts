import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { defineStream, service, t } from 'gantry';
import { tracingPlugin } from 'gantry/observe';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const orderPlaced = defineStream('trace-orders.placed', t.Object({ orderId: t.String() }));

const orders = service({ name: 'orders', version: '1.0.0' })
  .emits(orderPlaced)
  .post('/orders', { body: t.Object({ orderId: t.String() }), response: { 202: null } }, async ({ body }, ctx) => {
    await ctx.emit(orderPlaced, body);
    return undefined;
  })
  .get('/orders/fail', {}, async () => {
    throw new Error('database on fire');
  });

const shipped: string[] = [];
const shipping = service({ name: 'shipping', version: '2.0.0' }).on(orderPlaced, {}, async (order, ctx) => {
  ctx.log.info('shipping');
  shipped.push(order.orderId);
});

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan): string => span.spanContext().spanId;

describe('the tracing plugin', () => {
  let app: TestHost;
  const exporter = new InMemorySpanExporter();
  const tracing = tracingPlugin({ exporter, batch: false });

  beforeAll(async () => {
    app = await startTestHost({ services: [orders, shipping], plugins: [tracing] });
  });
  afterAll(async () => {
    await app.stop();
  });

  function spansOf(traceId: string): ReadableSpan[] {
    return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  }

  it('puts HTTP, event, publish and consume in one trace with the parent links of the flow and the log ids', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const res = await app.request(
      'POST',
      '/orders',
      { orderId: 'o-7' },
      { traceparent: `00-${traceId}-${callerSpan}-01`, 'x-request-id': 'trace-req-1' },
    );
    expect(res.status).toBe(202);
    await app.waitFor(() => shipped.includes('o-7'), 'the consumer');
    await app.waitFor(() => spansOf(traceId).length === 3, 'three spans');
    const spans = spansOf(traceId);
    // The HTTP event's run is the server span of its request: one span, with the HTTP and the event attributes.
    const http = spans.find((s) => s.kind === SpanKind.SERVER);
    const publish = spans.find((s) => s.kind === SpanKind.PRODUCER);
    const consume = spans.find((s) => s.kind === SpanKind.CONSUMER);
    if (!http || !publish || !consume) throw new Error(`missing spans: ${spans.map((s) => s.name)}`);

    expect(http.name).toBe('POST /orders');
    expect(parentOf(http)).toBe(callerSpan);
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/orders',
      'http.response.status_code': 202,
      'gantry.request_id': 'trace-req-1',
      'gantry.service': 'orders',
      'gantry.event': 'POST /orders',
      'gantry.event.kind': 'http',
      'gantry.outcome': 'succeeded',
    });
    expect(idOf(http)).toMatch(/^[0-9a-f]{16}$/);
    expect(parentOf(publish)).toBe(idOf(http));
    expect(publish.name).toBe('publish trace-orders.placed');
    expect(publish.attributes['messaging.destination.name']).toBe('trace-orders.placed');
    expect(parentOf(consume)).toBe(idOf(publish));
    expect(consume.name).toBe('shipping on trace-orders.placed (shipping)');
    expect(consume.attributes).toMatchObject({
      'messaging.consumer.group.name': 'shipping',
      'gantry.outcome': 'succeeded',
    });

    // The spans carry the ids of the log lines and of the message on the wire.
    const [envelope] = app.envelopes('trace-orders.placed');
    expect(envelope?.traceparent).toBe(`00-${traceId}-${idOf(publish)}-01`);
    const producerStart = app.logs
      .where('requestId', 'trace-req-1')
      .find((l) => l.msg === 'START' && l.service === 'orders');
    expect(producerStart?.spanId).toBe(idOf(http));
    const consumerLine = app.logs.lines.find((l) => l.msg === 'shipping');
    expect(consumerLine).toMatchObject({ traceId, spanId: idOf(consume) });

    // The span waterfall of the dashboard reads the same trace from the in-process store.
    const stored = tracing.store.trace(traceId);
    expect(stored.map((s) => s.kind)).toEqual(['server', 'producer', 'consumer']);
    expect(tracing.store.recent(5)[0]).toMatchObject({ traceId, spanCount: 3, error: false });
  });

  it('starts a trace with the ids of the log lines when the caller sent none', async () => {
    await app.request('POST', '/orders', { orderId: 'o-8' }, { 'x-request-id': 'trace-req-2' });
    const start = app.logs.where('requestId', 'trace-req-2').find((l) => l.msg === 'START');
    const traceId = start?.traceId as string;
    await app.waitFor(() => spansOf(traceId).length === 3, 'three spans');
    const http = spansOf(traceId).find((s) => s.kind === SpanKind.SERVER);
    expect(http && parentOf(http)).toBeUndefined();
    expect(http && idOf(http)).toBe(start?.spanId);
  });

  it('marks failed events and 5xx answers as errors, and traces requests that reached no event', async () => {
    const res = await app.request('GET', '/orders/fail', undefined, { 'x-request-id': 'trace-req-3' });
    expect(res.status).toBe(500);
    const traceId = app.logs.where('requestId', 'trace-req-3')[0]?.traceId as string;
    const spans = spansOf(traceId);
    expect(spans).toHaveLength(1);
    const event = spans[0];
    expect(event?.kind).toBe(SpanKind.SERVER);
    expect(event?.status.code).toBe(SpanStatusCode.ERROR);
    expect(event?.attributes).toMatchObject({ 'gantry.outcome': 'failed', 'http.response.status_code': 500 });
    expect(event?.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toBe(
      'database on fire',
    );

    const before = exporter.getFinishedSpans().length;
    await app.request('GET', '/no/such/route', undefined, {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    await app.request('GET', '/health/live');
    const added = exporter.getFinishedSpans().slice(before);
    expect(added.map((s) => s.name)).toEqual(['GET']);
    expect(added[0]?.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(added[0] && parentOf(added[0])).toBe('b7ad6b7169203331');
  });
});

describe('OTLP export', () => {
  let server: Server;
  const received: { url: string; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      request.on('end', () => {
        received.push({ url: request.url ?? '', body });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts spans to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces when it is set', async () => {
    const { port } = server.address() as AddressInfo;
    const tracing = tracingPlugin({
      environment: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SERVICE_NAME: 'otlp-probe' },
    });
    const app = await startTestHost({ services: [orders, shipping], plugins: [tracing] });
    try {
      await app.request('POST', '/orders', { orderId: 'o-9' }, { 'x-request-id': 'otlp-req' });
      const traceId = app.logs.where('requestId', 'otlp-req')[0]?.traceId as string;
      await app.waitFor(() => shipped.includes('o-9'), 'the consumer');
      await tracing.flush();
      await app.waitFor(() => received.some((r) => r.body.includes(traceId)), 'the export');
      const sent = received.find((r) => r.body.includes(traceId));
      expect(sent?.url).toBe('/v1/traces');
      expect(sent?.body).toContain('otlp-probe');
      expect(sent?.body).toContain('publish trace-orders.placed');
    } finally {
      await app.stop();
    }
  });
});
