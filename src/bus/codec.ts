import type { Envelope } from './envelope.ts';

/** A message as it travels on a transport with headers (CloudEvents binary mode). */
export interface WireMessage {
  /** `ce-*` attributes plus `content-type`; all strings. */
  headers: Record<string, string>;
  /** The JSON text of `data`. */
  body: string;
}

/** The result of reading a message off the wire: an envelope, or why it could not be read. */
export type Decoded = { ok: true; envelope: Envelope } | { ok: false; error: string; raw: string };

/** The attributes every message has, as the envelope names them. */
export const REQUIRED_ATTRIBUTES = ['id', 'source', 'type', 'time'] as const;
/** The optional string attributes of a message, as the envelope names them. */
export const OPTIONAL_ATTRIBUTES = ['subject', 'traceparent', 'tracestate', 'requestid', 'idempotencykey'] as const;
const ATTRIBUTES = [...REQUIRED_ATTRIBUTES, ...OPTIONAL_ATTRIBUTES] as const;

/** Writes an envelope in CloudEvents binary mode: attributes as `ce-` headers, `data` as the JSON body. */
export function encodeMessage(envelope: Envelope): WireMessage {
  const headers: Record<string, string> = { 'ce-specversion': '1.0', 'content-type': envelope.datacontenttype };
  for (const name of ATTRIBUTES) {
    const value = envelope[name];
    if (value !== undefined) headers[`ce-${name}`] = value;
  }
  return { headers, body: JSON.stringify(envelope.data) };
}

/**
 * Reads a message written by {@link encodeMessage}. Never throws: a message with missing attributes or a body that
 * is not JSON comes back as `ok: false` with the reason, for the consumer runner to dead-letter.
 */
export function decodeMessage(headers: Readonly<Record<string, string | undefined>>, body: string): Decoded {
  // Literal header names rather than names built per attribute: this runs once per message consumed, on every
  // adapter, and building `ce-${name}` strings was a measurable share of a delivery's cost.
  const id = headers['ce-id'];
  const source = headers['ce-source'];
  const type = headers['ce-type'];
  const time = headers['ce-time'];
  if (!present(id) || !present(source) || !present(type) || !present(time)) {
    return { ok: false, error: `missing CloudEvents attribute(s): ${missingOf(headers)}`, raw: body };
  }
  if (headers['ce-specversion'] !== '1.0')
    return { ok: false, error: `unsupported ce-specversion '${headers['ce-specversion']}'`, raw: body };
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    return { ok: false, error: `body is not JSON: ${(error as Error).message}`, raw: body };
  }
  const envelope: Envelope = { specversion: '1.0', id, source, type, time, datacontenttype: 'application/json', data };
  const subject = headers['ce-subject'];
  if (subject !== undefined) envelope.subject = subject;
  const traceparent = headers['ce-traceparent'];
  if (traceparent !== undefined) envelope.traceparent = traceparent;
  const tracestate = headers['ce-tracestate'];
  if (tracestate !== undefined) envelope.tracestate = tracestate;
  const requestid = headers['ce-requestid'];
  if (requestid !== undefined) envelope.requestid = requestid;
  const idempotencykey = headers['ce-idempotencykey'];
  if (idempotencykey !== undefined) envelope.idempotencykey = idempotencykey;
  return { ok: true, envelope };
}

/** True for a required attribute's value that is there: a non-empty string. */
export function present(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

/** The required attributes a message lacks, as `ce-` header names, for the dead letter's reason. */
function missingOf(headers: Readonly<Record<string, string | undefined>>): string {
  return REQUIRED_ATTRIBUTES.filter((name) => !present(headers[`ce-${name}`]))
    .map((name) => `ce-${name}`)
    .join(', ');
}
