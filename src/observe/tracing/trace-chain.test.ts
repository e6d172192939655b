// One trace through the example system in one host: customers (HTTP, outbox) → customers.changed → replicator.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { service, steps, t } from 'gantry';
import { rpcTarget } from 'gantry/calls';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../../examples/customers/service.ts';
import { replicator } from '../../../examples/replicator/service.ts';
import { directory } from '../../../test/fixtures/calls/services.ts';
import { tracingPlugin } from './plugin.ts';

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan): string => span.spanContext().spanId;

describe('one trace from a customers request to the replica write', () => {
  let app: TestHost;
  const exporter = new InMemorySpanExporter();

  beforeAll(async () => {
    app = await startTestHost({
      services: [customers, replicator],
      plugins: [tracingPlugin({ exporter, batch: false })],
    });
  });
  afterAll(async () => app?.stop());

  const spansOf = (traceId: string): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);

  it('links HTTP → event → outbox publish → consume → replica write under one trace id', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const callerSpan = '1122334455667788';
    const res = await app.request(
      'POST',
      '/customers',
      { name: 'Grace Hopper', email: 'grace@example.com' },
      { traceparent: `00-${traceId}-${callerSpan}-01` },
    );
    expect(res.status).toBe(201);
    const find = (predicate: (span: ReadableSpan) => boolean): ReadableSpan | undefined =>
      spansOf(traceId).find(predicate);
    const isPublish = (span: ReadableSpan): boolean =>
      span.kind === SpanKind.PRODUCER && span.name === 'publish customers.changed';
    const isConsume = (span: ReadableSpan): boolean =>
      span.kind === SpanKind.CONSUMER && span.name.startsWith('replicator on customers.changed');
    const isWrite = (span: ReadableSpan): boolean => span.name === 'replica upsert';
    await app.waitFor(() => find(isWrite) !== undefined, 'the replica write span', 15_000);

    // The POST event's run is the server span of its request.
    const event = find((span) => span.kind === SpanKind.SERVER);
    const publish = find(isPublish);
    const consume = find(isConsume);
    const write = find(isWrite);
    if (!event || !publish || !consume || !write) {
      throw new Error(`missing spans: ${spansOf(traceId).map((span) => span.name)}`);
    }
    expect(event.name).toBe('POST /customers');
    expect(event.attributes).toMatchObject({ 'gantry.service': 'customers', 'gantry.event': 'POST /customers' });
    expect(parentOf(event)).toBe(callerSpan);
    // Relayed by the outbox after commit, and still under the event that emitted it.
    expect(parentOf(publish)).toBe(idOf(event));
    expect(parentOf(consume)).toBe(idOf(publish));
    expect(parentOf(write)).toBe(idOf(consume));
    expect(write.kind).toBe(SpanKind.CLIENT);
    expect(write.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.name': 'upsert' });
    expect(write.status.code).toBe(SpanStatusCode.UNSET);
    // The outboxed publish spans the time from emit to broker, so it starts within its event.
    const ms = (time: [number, number]): number => time[0] * 1000 + time[1] / 1e6;
    expect(ms(publish.startTime)).toBeGreaterThanOrEqual(ms(event.startTime));
    for (const span of [event, publish, consume, write]) expect(span.spanContext().traceId).toBe(traceId);
    // The event's own queries (PGlite here), inside its transaction too, are spans under it.
    const queries = spansOf(traceId).filter((span) => parentOf(span) === idOf(event) && span.name.startsWith('db '));
    expect(queries.map((query) => query.name)).toEqual(['db insert', 'db insert', 'db insert']);
    expect(String(queries[0]?.attributes['db.query.text'])).toMatch(/^insert into "customers"/);
    expect(queries[0]?.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.name': 'insert' });
    expect(queries.every((query) => query.kind === SpanKind.CLIENT)).toBe(true);
    // The relay's queries run outside any event: they are no one's spans.
    const texts = exporter.getFinishedSpans().map((span) => String(span.attributes['db.query.text'] ?? ''));
    expect(texts.some((text) => text.includes('skip locked'))).toBe(false);
  });
});

describe('calls to other services in the trace', () => {
  const exporter = new InMemorySpanExporter();
  const caller = service({ name: 'caller', version: '1.0.0' })
    .get('/lookup', { auth: 'public', response: t.Object({ status: t.Integer() }) }, async (_input, ctx) => {
      const found = await ctx.client(directory).get('/customers/:id', { params: { id: 'ada' } });
      return { status: found.status };
    })
    .get('/sum', { auth: 'public', response: t.Object({ sum: t.Number() }) }, async (_input, ctx) =>
      ctx.request(rpcTarget(directory, 'add'), { a: 2, b: 3 }),
    );
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({
      services: [directory, caller],
      plugins: [tracingPlugin({ exporter, batch: false })],
      config: { host: { auth: { serviceSecret: 'a-test-secret-of-at-least-32-characters' } } },
    });
  });
  afterAll(async () => app?.stop());

  it('puts a client span per call between the calling event and the called one', async () => {
    for (const path of ['/lookup', '/sum']) {
      const res = await app.request('GET', path);
      expect(res.status, path).toBe(200);
    }
    const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
    await app.waitFor(() => spans().filter((span) => span.kind === SpanKind.CLIENT).length === 2, 'two client spans');
    const byName = (name: string): ReadableSpan => {
      const found = spans().find((span) => span.name === name);
      if (!found) throw new Error(`no span '${name}' among ${spans().map((span) => span.name)}`);
      return found;
    };
    const lookup = byName('GET /lookup');
    const call = byName('GET directory /customers/:id');
    const served = byName('GET /customers/:id');
    expect(call.kind).toBe(SpanKind.CLIENT);
    expect(parentOf(call)).toBe(idOf(lookup));
    expect(parentOf(served)).toBe(idOf(call));
    expect(call.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.template': '/customers/:id',
      'http.response.status_code': 200,
      'gantry.call.target': 'directory',
    });
    const sum = byName('GET /sum');
    const rpc = byName('rpc directory.add');
    const answered = spans().find((span) => span.attributes['gantry.event'] === 'rpc add');
    expect(parentOf(rpc)).toBe(idOf(sum));
    expect(answered && parentOf(answered)).toBe(idOf(rpc));
    for (const span of [call, served]) expect(span.spanContext().traceId).toBe(lookup.spanContext().traceId);
  });
});

describe('the steps of an event in the trace', () => {
  const exporter = new InMemorySpanExporter();
  const checkName = async ({ body }: { body: { name: string } }) => {
    if (body.name === 'nobody') throw new Error('no such person');
    return body;
  };
  const greet = async (input: { name: string }) => ({ greeting: `hello ${input.name}` });
  const greeter = service({ name: 'greeter', version: '1.0.0' }).post(
    '/greet',
    { body: t.Object({ name: t.String() }), response: t.Object({ greeting: t.String() }) },
    steps(checkName, greet),
  );
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [greeter], plugins: [tracingPlugin({ exporter, batch: false })] });
  });
  afterAll(async () => app?.stop());

  it('gives each step a span under the event, and marks the step that failed', async () => {
    expect((await app.request('POST', '/greet', { name: 'Ada' })).status).toBe(200);
    expect((await app.request('POST', '/greet', { name: 'nobody' })).status).toBe(500);
    const spans = exporter.getFinishedSpans();
    const servers = spans.filter((span) => span.name === 'POST /greet');
    expect(servers).toHaveLength(2);
    const [ok, failed] = servers as [ReadableSpan, ReadableSpan];
    const under = (parent: ReadableSpan): string[] =>
      spans.filter((span) => parentOf(span) === idOf(parent)).map((span) => span.name);
    expect(under(ok)).toEqual(['step checkName', 'step greet']);
    expect(under(failed)).toEqual(['step checkName']);
    const failedStep = spans.find((span) => parentOf(span) === idOf(failed)) as ReadableSpan;
    expect(failedStep.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'no such person' });
    expect(failedStep.kind).toBe(SpanKind.INTERNAL);
  });
});
