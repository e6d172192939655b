import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { ServiceInfo } from '../service/context.ts';
import type { Tracking } from '../tracking/trace-context.ts';
import { recordWorkSpan } from '../tracking/work-spans.ts';

/** What an outbound call knows of the event that makes it: who calls, its tracking ids, its deadline, its signal. */
export interface CallContext {
  readonly caller: ServiceInfo;
  readonly tracking: Tracking;
  /** Epoch ms the calling event's own deadline ends at; no call waits past it. Undefined for loops and setup. */
  readonly deadline: number | undefined;
  readonly signal: AbortSignal;
}

/** What the span of one attempt of a call says: its name, attributes and, when it failed, why. */
export interface CallSpanFields {
  name: string;
  attributes: Attributes;
  failure: unknown;
}

/**
 * Records the client span of one attempt of a call under the calling event's span, with the span id the attempt's
 * `traceparent` named, so the target's own span is its child. It is emitted when the event ends, by the tracing
 * plugin if the host has one (without it, this is a push onto a list that goes with the event).
 */
export function recordCallSpan(
  ctx: CallContext,
  traceparent: string | undefined,
  startMs: number,
  fields: CallSpanFields,
): void {
  const spanId = traceparent?.slice(36, 52);
  if (spanId === undefined || spanId.length !== 16) return;
  recordWorkSpan(ctx.tracking, {
    name: fields.name,
    kind: SpanKind.CLIENT,
    spanId,
    startMs,
    endMs: Date.now(),
    attributes: fields.attributes,
    failed: fields.failure !== undefined,
    error: fields.failure,
  });
}
