import { AsyncLocalStorage } from 'node:async_hooks';
import type { Attributes, SpanKind } from '@opentelemetry/api';
import { childTraceparent, type Tracking } from './trace-context.ts';

/** A piece of work done inside an event (a step, a call, a query), timed and waiting for its event to end. */
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

// Keyed by the event's own tracking object, which only its host and handler hold: nothing is shared between hosts,
// and an entry goes with its event when no tracing plugin collects it.
const pending = new WeakMap<Tracking, WorkSpan[]>();

/**
 * Records a finished piece of work under the running event's span; the tracing plugin, when the host has one, emits
 * it as a child span once the event ends. Without one this is a push onto a list that goes with the event.
 */
export function recordWorkSpan(tracking: Tracking, span: WorkSpan): void {
  const list = pending.get(tracking);
  if (list === undefined) pending.set(tracking, [span]);
  else list.push(span);
}

/**
 * Times a piece of work that ended now: under the span id given (an outgoing call names its span in the `traceparent`
 * it sends, before the answer comes), else under a new one.
 */
export function recordTimedWork(
  tracking: Tracking,
  fields: { name: string; kind: SpanKind; startMs: number; attributes: Attributes; error?: unknown; spanId?: string },
): void {
  recordWorkSpan(tracking, {
    name: fields.name,
    kind: fields.kind,
    spanId: fields.spanId ?? childTraceparent(tracking).spanId,
    startMs: fields.startMs,
    endMs: Date.now(),
    attributes: fields.attributes,
    failed: fields.error !== undefined,
    error: fields.error,
  });
}

/**
 * Runs `work` and records it as finished work under `tracking` (see {@link recordTimedWork}), failed when it throws;
 * resolves or rejects as `work` does. A throw of nothing still marks the span failed.
 */
export async function timeWork<T>(
  tracking: Tracking,
  fields: { name: string; kind: SpanKind; attributes: Attributes; spanId?: string },
  work: () => Promise<T>,
): Promise<T> {
  const startMs = Date.now();
  try {
    const value = await work();
    recordTimedWork(tracking, { ...fields, startMs });
    return value;
  } catch (error) {
    recordTimedWork(tracking, { ...fields, startMs, error: error ?? new Error('failed') });
    throw error;
  }
}

/** Takes the work recorded during an event (the tracing plugin, when the event ends); undefined when there is none. */
export function takeWorkSpans(tracking: Tracking): WorkSpan[] | undefined {
  const spans = pending.get(tracking);
  if (spans !== undefined) pending.delete(tracking);
  return spans;
}

/**
 * The tracking of the event whose handler is running, for work that is not handed the context: a database driver's
 * queries. Set by the event runner around each handler; each event's own value, so hosts share nothing through it.
 */
const runningEvent = new AsyncLocalStorage<Tracking>();

/** Runs `handler` with `tracking` as the running event's (see {@link currentEventTracking}). */
export function runAsEvent<T>(tracking: Tracking, handler: () => T): T {
  return runningEvent.run(tracking, handler);
}

/** The tracking of the event whose handler (or the work it started) is running now, if any. */
export function currentEventTracking(): Tracking | undefined {
  return runningEvent.getStore();
}
