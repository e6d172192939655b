import { randomHex, randomUuid } from './ids.ts';

/**
 * The ids that follow one unit of work through every log line, emitted message and outgoing call.
 * `traceparent` follows W3C Trace Context; the request id follows `X-Request-Id`.
 */
export interface Tracking {
  requestId: string;
  traceId: string;
  spanId: string;
  /** The span this one continues, when the caller sent a traceparent. */
  parentSpanId?: string;
  traceparent: string;
  tracestate?: string;
  /** The calling service, when the caller said who it is. */
  caller?: string;
}

/** What arrives from outside: header values or message extensions. */
export interface IncomingTracking {
  requestId?: string;
  traceparent?: string;
  tracestate?: string;
  caller?: string;
}

// W3C Trace Context, version 00: version-traceid-parentid-flags, lower-case hex, all-zero ids invalid.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/**
 * Continues the caller's trace (a new span under its span) or starts a new one, and keeps a safe request id or
 * makes one. Kept by hand because it is a dozen lines of the W3C format and must not load a tracing SDK when
 * tracing is off.
 */
export function continueTracking(incoming: IncomingTracking = {}): Tracking {
  const parsed = incoming.traceparent ? TRACEPARENT.exec(incoming.traceparent.trim()) : null;
  const validParent = parsed !== null && parsed[1] !== ZERO_TRACE && parsed[2] !== ZERO_SPAN;
  const traceId = validParent ? (parsed[1] as string) : randomHex(16);
  const flags = validParent ? (parsed[3] as string) : '01';
  const spanId = randomHex(8);
  const tracking: Tracking = {
    requestId: incoming.requestId && REQUEST_ID.test(incoming.requestId) ? incoming.requestId : randomUuid(),
    traceId,
    spanId,
    traceparent: `00-${traceId}-${spanId}-${flags}`,
  };
  if (validParent) tracking.parentSpanId = parsed[2] as string;
  if (validParent && incoming.tracestate) tracking.tracestate = incoming.tracestate;
  if (incoming.caller) tracking.caller = incoming.caller;
  return tracking;
}

/**
 * The traceparent of a new span under `tracking`'s span, in the same trace with the same flags: what a message carries,
 * so that its consumer continues under the publish span rather than beside it.
 *
 * @example
 * const { spanId, traceparent } = childTraceparent(ctx.tracking); // spanId names the publish span
 */
export function childTraceparent(tracking: Pick<Tracking, 'traceId' | 'traceparent'>): {
  spanId: string;
  traceparent: string;
} {
  const spanId = randomHex(8);
  return { spanId, traceparent: `00-${tracking.traceId}-${spanId}-${tracking.traceparent.slice(-2)}` };
}
