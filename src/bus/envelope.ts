import { createHash } from 'node:crypto';
import { randomUuid } from '../tracking/ids.ts';
import type { Tracking } from '../tracking/trace-context.ts';

/**
 * A message on a stream: CloudEvents 1.0 attributes plus Gantry's extensions. On transports with headers the
 * attributes travel as headers (binary mode) and `data` as the body; see docs/protocol.md.
 */
export interface Envelope<T = unknown> {
  specversion: '1.0';
  /** Unique per message; the inbox deduplicates on it. */
  id: string;
  /** `<service>@<version>` of the producer. */
  source: string;
  /** The stream name. */
  type: string;
  /** RFC 3339 time of the emit. */
  time: string;
  /** The partition key, when there is one. */
  subject?: string;
  datacontenttype: 'application/json';
  data: T;
  traceparent?: string;
  tracestate?: string;
  /** The request id of the work that emitted the message. */
  requestid?: string;
  /** Set by the producer for publish-side deduplication. */
  idempotencykey?: string;
}

/** Options of {@link createEnvelope}. */
export interface NewEnvelope<T> {
  stream: string;
  data: T;
  source: string;
  key?: string;
  tracking?: Pick<Tracking, 'requestId' | 'traceparent' | 'tracestate'>;
  idempotencyKey?: string;
}

/** Builds the envelope of a new message. */
export function createEnvelope<T>(options: NewEnvelope<T>): Envelope<T> {
  const envelope: Envelope<T> = {
    specversion: '1.0',
    id:
      options.idempotencyKey === undefined
        ? randomUuid()
        : idempotentId(options.source, options.stream, options.idempotencyKey),
    source: options.source,
    type: options.stream,
    time: isoNow(),
    datacontenttype: 'application/json',
    data: options.data,
  };
  if (options.key !== undefined) envelope.subject = options.key;
  if (options.tracking) {
    envelope.requestid = options.tracking.requestId;
    envelope.traceparent = options.tracking.traceparent;
    if (options.tracking.tracestate) envelope.tracestate = options.tracking.tracestate;
  }
  if (options.idempotencyKey !== undefined) envelope.idempotencykey = options.idempotencyKey;
  return envelope;
}

let lastMs = -1;
let lastIso = '';

/**
 * The current time in RFC 3339, formatted once per millisecond: a burst of emits in one millisecond (a batch publish)
 * shares the string instead of formatting a Date each. A memo of the clock, not state a host could share.
 */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/**
 * The message id of an emit with an idempotency key: a UUID-shaped digest of producer, stream and key, so repeating
 * the emit repeats the id and every inbox (and NATS' duplicate window) drops the copy.
 */
export function idempotentId(source: string, stream: string, key: string): string {
  const hex = createHash('sha256')
    .update(`${source.split('@')[0]}|${stream}|${key}`)
    .digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
