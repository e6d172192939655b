import { type Decoded, decodeMessage, encodeMessage } from '../codec.ts';
import type { Envelope } from '../envelope.ts';

/** The stream entry field that holds the JSON of `data` (the CloudEvents binary-mode body). */
export const BODY_FIELD = 'body';
/** The stream entry field that holds the CloudEvents binary-mode headers, as one JSON object of strings. */
export const HEADERS_FIELD = 'headers';

/**
 * Writes an envelope as the field list of a stream entry (`XADD key * headers <json> body <json>`): the headers of
 * {@link encodeMessage} (`ce-id`, `ce-type`, ..., `content-type`) as one JSON object in the field `headers`, and the
 * JSON of `data` in the field `body`.
 *
 * @remarks One field per header would read better in `XRANGE`, but it makes an entry three to four times as many strings for
 * the client to write and parse and the server to store, and that cost dominated publish and consume alike. Both
 * fields stay plain JSON, readable with any client. The headers' JSON is written here directly, the very text
 * `JSON.stringify(encodeMessage(envelope).headers)` gives (a test holds it to that), without building the headers
 * object first: a third less time per message than stringifying that object.
 */
export function encodeRedisEntry(envelope: Envelope): string[] {
  return [HEADERS_FIELD, redisHeadersJson(envelope), BODY_FIELD, JSON.stringify(envelope.data)];
}

/**
 * The value of the `headers` field of {@link encodeRedisEntry}: the JSON of {@link encodeMessage}'s headers of
 * `envelope`, in its order.
 */
export function redisHeadersJson(envelope: Envelope): string {
  let json = '{"ce-specversion":"1.0"';
  if (envelope.datacontenttype !== undefined) json += `,"content-type":${JSON.stringify(envelope.datacontenttype)}`;
  if (envelope.id !== undefined) json += `,"ce-id":${JSON.stringify(envelope.id)}`;
  if (envelope.source !== undefined) json += `,"ce-source":${JSON.stringify(envelope.source)}`;
  if (envelope.type !== undefined) json += `,"ce-type":${JSON.stringify(envelope.type)}`;
  if (envelope.time !== undefined) json += `,"ce-time":${JSON.stringify(envelope.time)}`;
  if (envelope.subject !== undefined) json += `,"ce-subject":${JSON.stringify(envelope.subject)}`;
  if (envelope.traceparent !== undefined) json += `,"ce-traceparent":${JSON.stringify(envelope.traceparent)}`;
  if (envelope.tracestate !== undefined) json += `,"ce-tracestate":${JSON.stringify(envelope.tracestate)}`;
  if (envelope.requestid !== undefined) json += `,"ce-requestid":${JSON.stringify(envelope.requestid)}`;
  if (envelope.idempotencykey !== undefined) {
    json += `,"ce-idempotencykey":${JSON.stringify(envelope.idempotencykey)}`;
  }
  return `${json}}`;
}

/**
 * Reads the field list of a stream entry. Besides what {@link encodeRedisEntry} writes, it accepts headers written as
 * fields of their own (`ce-id <id> ce-type <type> ... body <json>`), as a foreign producer may write them. Never
 * throws: an entry that is not a Gantry message comes back as `ok: false`, with `raw` holding its `body` field, or all
 * its fields as a JSON object when it has none.
 */
export function decodeRedisEntry(fields: readonly string[]): Decoded {
  let headers: Record<string, string | undefined> | undefined;
  let body: string | undefined;
  let headersText: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    if (name === BODY_FIELD) body = value;
    else if (name === HEADERS_FIELD) headersText = value;
    else {
      headers ??= {};
      headers[name] = value;
    }
  }
  if (headersText !== undefined) {
    const parsed = parseHeaders(headersText);
    if (parsed === undefined) {
      return {
        ok: false,
        error: `the '${HEADERS_FIELD}' field is not a JSON object of strings`,
        raw: rawOf(fields, body),
      };
    }
    headers = headers === undefined ? parsed : { ...headers, ...parsed };
  }
  const decoded = decodeMessage(headers ?? {}, body ?? '');
  if (decoded.ok || body !== undefined) return decoded;
  return { ok: false, error: `${decoded.error}; no '${BODY_FIELD}' field`, raw: rawOf(fields, body) };
}

/** What a dead letter keeps of an entry that could not be read: its body, or all its fields as a JSON object. */
function rawOf(fields: readonly string[], body: string | undefined): string {
  if (body !== undefined) return body;
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
  return JSON.stringify(record);
}

function parseHeaders(text: string): Record<string, string> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  for (const name in record) if (typeof record[name] !== 'string') return undefined;
  return record as Record<string, string>;
}

/**
 * The key of a Gantry stream: `<prefix>{<stream>}`. The braces make a Redis Cluster hash tag, so a stream and its
 * retry sets share a slot and the adapter's scripts, which touch both, stay valid on a cluster.
 *
 * @example
 * redisStreamKey('gantry:', 'orders.created'); // 'gantry:{orders.created}'
 */
export function redisStreamKey(prefix: string, stream: string): string {
  return `${prefix}{${stream}}`;
}

/**
 * The key of the delayed-retry sorted set of one group of a stream: `<prefix>{<stream>}:retry:<group>`. Members are
 * entry ids, scores the server time (ms) at which each is due again.
 */
export function redisRetryKey(prefix: string, stream: string, group: string): string {
  return `${redisStreamKey(prefix, stream)}:retry:${group}`;
}
