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

const ATTRIBUTES = [
  'id',
  'source',
  'type',
  'time',
  'subject',
  'traceparent',
  'tracestate',
  'requestid',
  'idempotencykey',
] as const;
const REQUIRED = ['id', 'source', 'type', 'time'] as const;

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
  const missing = REQUIRED.filter((name) => typeof headers[`ce-${name}`] !== 'string' || headers[`ce-${name}`] === '');
  if (missing.length > 0)
    return {
      ok: false,
      error: `missing CloudEvents attribute(s): ${missing.map((m) => `ce-${m}`).join(', ')}`,
      raw: body,
    };
  if (headers['ce-specversion'] !== '1.0')
    return { ok: false, error: `unsupported ce-specversion '${headers['ce-specversion']}'`, raw: body };
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    return { ok: false, error: `body is not JSON: ${(error as Error).message}`, raw: body };
  }
  const envelope: Envelope = {
    specversion: '1.0',
    id: headers['ce-id'] as string,
    source: headers['ce-source'] as string,
    type: headers['ce-type'] as string,
    time: headers['ce-time'] as string,
    datacontenttype: 'application/json',
    data,
  };
  for (const name of ['subject', 'traceparent', 'tracestate', 'requestid', 'idempotencykey'] as const) {
    const value = headers[`ce-${name}`];
    if (value !== undefined) envelope[name] = value;
  }
  return { ok: true, envelope };
}
