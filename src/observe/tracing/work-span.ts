import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { Tracking } from '../../tracking/trace-context.ts';
import { childTraceparent } from '../../tracking/trace-context.ts';
import { emitSpan, type SpanSink } from './span.ts';

/** A piece of work done inside an event, timed by {@link traceWork}, waiting for its event to end. */
export interface WorkSpan {
  name: string;
  kind: SpanKind;
  spanId: string;
  startMs: number;
  endMs: number;
  attributes: Attributes;
  error?: unknown;
  failed: boolean;
}

/** Options of {@link traceWork}. */
export interface TraceWorkOptions {
  /** Span attributes, e.g. `db.system.name`, `db.operation.name`, `db.collection.name`. */
  attributes?: Attributes;
  /** OpenTelemetry span kind; default `CLIENT` (a call to a database or another server). */
  kind?: SpanKind;
}

// Keyed by the event's own tracking object, which only its host and handler hold: nothing is shared between hosts,
// and an entry goes with its event when no tracing plugin collects it.
const pending = new WeakMap<Tracking, WorkSpan[]>();

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
export async function traceWork<T>(
  tracking: Tracking,
  name: string,
  work: () => Promise<T>,
  options: TraceWorkOptions = {},
): Promise<T> {
  const startMs = Date.now();
  const record = (failed: boolean, error?: unknown): void => {
    recordWorkSpan(tracking, {
      name,
      kind: options.kind ?? SpanKind.CLIENT,
      spanId: childTraceparent(tracking).spanId,
      startMs,
      endMs: Date.now(),
      attributes: options.attributes ?? {},
      failed,
      error,
    });
  };
  try {
    const value = await work();
    record(false);
    return value;
  } catch (error) {
    record(true, error);
    throw error;
  }
}

/**
 * Records a finished piece of work under the running event's span, to be emitted when the event ends: what
 * {@link traceWork} does once its work settles, for callers that drew the span's id themselves (an outgoing call
 * names its span in the `traceparent` it sends, before the answer comes).
 */
export function recordWorkSpan(tracking: Tracking, span: WorkSpan): void {
  const list = pending.get(tracking);
  if (list === undefined) pending.set(tracking, [span]);
  else list.push(span);
}

/**
 * Emits the spans {@link traceWork} recorded during an event, as children of the event's span. Called by the tracing
 * plugin when the event ends.
 */
export function emitWorkSpans(sink: SpanSink, tracking: Tracking, traceFlags: number): void {
  const spans = pending.get(tracking);
  if (spans === undefined) return;
  pending.delete(tracking);
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
