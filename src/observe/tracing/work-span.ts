import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { Tracking } from '../../tracking/trace-context.ts';
import { takeWorkSpans, timeWork } from '../../tracking/work-spans.ts';
import { emitSpan, type SpanSink } from './span.ts';

/** Options of {@link traceWork}. */
export interface TraceWorkOptions {
  /** Span attributes, e.g. `db.system.name`, `db.operation.name`, `db.collection.name`. */
  attributes?: Attributes;
  /** OpenTelemetry span kind; default `CLIENT` (a call to a database or another server). */
  kind?: SpanKind;
}

/**
 * Times `work` as a span under the running event's span (its `ctx.tracking`), such as a database write. The span is
 * handed to the host's tracing plugin when the event ends, so it costs a clock reading and an array push, and nothing
 * at all leaves the process when the host has no tracing plugin. Work still running when its event ends is not
 * recorded. The value or error of `work` passes through unchanged.
 *
 * @param tracking the handler's `ctx.tracking`
 * @param name the span name, e.g. `upsert replica_customers`
 * @example
 * await traceWork(ctx.tracking, 'upsert replica_customers', () => store.upsert(row), {
 *   attributes: { 'db.system.name': 'postgresql', 'db.operation.name': 'upsert' },
 * });
 */
export function traceWork<T>(
  tracking: Tracking,
  name: string,
  work: () => Promise<T>,
  options: TraceWorkOptions = {},
): Promise<T> {
  return timeWork(
    tracking,
    { name, kind: options.kind ?? SpanKind.CLIENT, attributes: options.attributes ?? {} },
    work,
  );
}

/**
 * Emits the spans {@link traceWork} recorded during an event, as children of the event's span. Called by the tracing
 * plugin when the event ends.
 */
export function emitWorkSpans(sink: SpanSink, tracking: Tracking, traceFlags: number): void {
  const spans = takeWorkSpans(tracking);
  if (spans === undefined) return;
  for (const span of spans) {
    emitSpan(sink, {
      name: span.name,
      kind: span.kind,
      traceId: tracking.traceId,
      spanId: span.spanId,
      parentSpanId: tracking.spanId,
      traceFlags,
      startMs: span.startMs,
      endMs: span.endMs,
      attributes: span.attributes,
      failure: span.failed
        ? { message: span.error instanceof Error ? span.error.message : 'failed', error: span.error }
        : undefined,
    });
  }
}
