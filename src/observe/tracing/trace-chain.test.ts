// One trace through the example system in one host: customers (HTTP, outbox) → customers.changed → replicator.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../../examples/customers/service.ts';
import { replicator } from '../../../examples/replicator/service.ts';
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
  });
});
