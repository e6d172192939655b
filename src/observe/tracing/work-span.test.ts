import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { continueTracking } from '../../tracking/trace-context.ts';
import type { SpanSink } from './span.ts';
import { emitWorkSpans, traceWork } from './work-span.ts';

function collector(): { sink: SpanSink; spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = [];
  const sink: SpanSink = {
    resource: resourceFromAttributes({ 'service.name': 'work-test' }),
    scope: { name: 'gantry' },
    onEnd: (span) => spans.push(span),
  };
  return { sink, spans };
}

describe('traceWork', () => {
  it('passes values and errors through and emits each piece of work under the event once it ends', async () => {
    const tracking = continueTracking();
    const { sink, spans } = collector();
    expect(await traceWork(tracking, 'read', async () => 42, { attributes: { 'db.operation.name': 'select' } })).toBe(
      42,
    );
    await expect(
      traceWork(tracking, 'write', async () => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(spans).toEqual([]);

    emitWorkSpans(sink, tracking, 1);
    expect(spans.map((span) => span.name)).toEqual(['read', 'write']);
    const [read, write] = spans as [ReadableSpan, ReadableSpan];
    for (const span of spans) {
      expect(span.spanContext().traceId).toBe(tracking.traceId);
      expect(span.parentSpanContext?.spanId).toBe(tracking.spanId);
      expect(span.kind).toBe(SpanKind.CLIENT);
    }
    expect(read.spanContext().spanId).not.toBe(write.spanContext().spanId);
    expect(read.attributes).toEqual({ 'db.operation.name': 'select' });
    expect(read.status.code).toBe(SpanStatusCode.UNSET);
    expect(write.status).toEqual({ code: SpanStatusCode.ERROR, message: 'disk full' });
    expect(write.events[0]?.attributes?.['exception.message']).toBe('disk full');

    // Taken once: a second end of the same event emits nothing more.
    emitWorkSpans(sink, tracking, 1);
    expect(spans).toHaveLength(2);
  });

  it('emits nothing for an unsampled trace', async () => {
    const tracking = continueTracking({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00` });
    const { sink, spans } = collector();
    await traceWork(tracking, 'quiet', async () => undefined);
    emitWorkSpans(sink, tracking, 0);
    expect(spans).toEqual([]);
  });
});
