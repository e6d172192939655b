import { SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { describe, expect, it } from 'vitest';
import { emitSpan, type SpanSink } from './span.ts';
import { SpanStore } from './span-store.ts';

function storeSink(store: SpanStore): SpanSink {
  return {
    resource: resourceFromAttributes({ 'service.name': 'store-test' }),
    scope: { name: 'gantry' },
    onEnd: (span) => store.onEnd(span),
  };
}

const traceId = (n: number): string => n.toString(16).padStart(32, '0');
const spanId = (n: number): string => n.toString(16).padStart(16, '0');

function end(sink: SpanSink, trace: number, span: number, options: { parent?: number; startMs?: number } = {}): void {
  const startMs = options.startMs ?? 1_000 + span;
  emitSpan(sink, {
    name: `span ${span}`,
    kind: SpanKind.INTERNAL,
    traceId: traceId(trace),
    spanId: spanId(span),
    parentSpanId: options.parent === undefined ? undefined : spanId(options.parent),
    traceFlags: 1,
    startMs,
    endMs: startMs + 2,
    attributes: { n: span },
  });
}

describe('SpanStore', () => {
  it('groups the spans of a trace, parents first, and lists traces newest first', () => {
    const store = new SpanStore();
    const sink = storeSink(store);
    end(sink, 1, 11, { parent: 10, startMs: 1_000 });
    end(sink, 1, 10, { startMs: 1_000 });
    end(sink, 2, 20);
    expect(store.trace(traceId(1)).map((span) => span.spanId)).toEqual([spanId(10), spanId(11)]);
    expect(store.trace(traceId(1))[1]).toMatchObject({
      parentSpanId: spanId(10),
      durationMs: 2,
      attributes: { n: 11 },
    });
    expect(store.recent().map((trace) => [trace.traceId, trace.spanCount])).toEqual([
      [traceId(2), 1],
      [traceId(1), 2],
    ]);
    expect(store.trace(traceId(3))).toEqual([]);
  });

  it('always keeps the newest maxTraces traces, never more than twice as many, and drops the oldest first', () => {
    const store = new SpanStore({ maxTraces: 3 });
    const sink = storeSink(store);
    for (let trace = 1; trace <= 20; trace++) {
      end(sink, trace, trace * 10);
      const kept = store.recent(100).map((summary) => summary.traceId);
      expect(kept.slice(0, Math.min(trace, 3))).toEqual(
        [trace, trace - 1, trace - 2].filter((n) => n >= 1).map(traceId),
      );
      expect(kept.length).toBeLessThanOrEqual(6);
      // Whatever is kept is a run of the newest traces: nothing older survives something newer.
      expect(kept).toEqual(kept.map((_, index) => traceId(trace - index)));
    }
    expect(store.trace(traceId(1))).toEqual([]);
    // A span of a trace still kept joins it, wherever that trace is.
    const oldest = store.recent(100).at(-1)?.traceId as string;
    end(sink, Number.parseInt(oldest, 16), 999);
    expect(store.trace(oldest)).toHaveLength(2);
  });

  it('keeps at most maxSpansPerTrace spans of one trace', () => {
    const store = new SpanStore({ maxSpansPerTrace: 4 });
    const sink = storeSink(store);
    for (let span = 1; span <= 10; span++) end(sink, 7, span);
    expect(store.trace(traceId(7)).map((span) => span.name)).toEqual(['span 1', 'span 2', 'span 3', 'span 4']);
  });
});
