import { type Decoded, decodeMessage, OPTIONAL_ATTRIBUTES, present, REQUIRED_ATTRIBUTES } from '../codec.ts';
import type { Envelope } from '../envelope.ts';

/** The stream entry field that holds the whole message as one CloudEvents JSON object (structured mode). */
export const EVENT_FIELD = 'event';
/** The field of the body (the JSON of `data`) in entries of the binary layout, read but no longer written. */
export const BODY_FIELD = 'body';
/** The field of the binary layout's headers, one JSON object of strings; read but no longer written. */
export const HEADERS_FIELD = 'headers';

/**
 * Writes an envelope as the field list of a stream entry: `XADD key * event <json>`, where the JSON is the message in
 * the CloudEvents JSON format (structured mode: the attributes and `data` in one object).
 *
 * @remarks Redis Streams have no headers, so the binary layout Gantry wrote before (`headers <json> body <json>`)
 * only imitated them, at a price: two more strings per entry for the client to write, for the server to keep and for
 * the client to turn back from buffers, and a second `JSON.parse` per message. One field costs what a raw client's
 * `XADD key * body <json>` costs. Entries of the binary layout, and headers written as fields of their own by a
 * foreign producer, are still read (see {@link decodeRedisEntry}).
 */
export function encodeRedisEntry(envelope: Envelope): string[] {
  return [EVENT_FIELD, redisEventJson(envelope)];
}

/**
 * The value of the `event` field of {@link encodeRedisEntry}: the envelope as a CloudEvents JSON object. The
 * envelope's property names are CloudEvents attribute names, so its JSON is that object, written in one pass; `data`
 * that JSON leaves out (undefined) reads back as null. Throws what `JSON.stringify` throws for data it cannot write
 * (a BigInt, a cycle).
 */
export function redisEventJson(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

/** Reads the JSON of an `event` field. Never throws: what is not a CloudEvent of ours comes back with the reason. */
function decodeEventJson(text: string): Decoded {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `the '${EVENT_FIELD}' field is not JSON: ${(error as Error).message}`, raw: text };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, error: `the '${EVENT_FIELD}' field is not a JSON object`, raw: text };
  }
  const event = parsed as Record<string, unknown>;
  for (const name of REQUIRED_ATTRIBUTES) {
    if (present(event[name])) continue;
    const missing = REQUIRED_ATTRIBUTES.filter((required) => !present(event[required]));
    return { ok: false, error: `missing CloudEvents attribute(s): ${missing.join(', ')}`, raw: text };
  }
  if (event.specversion !== '1.0') {
    return { ok: false, error: `unsupported specversion '${String(event.specversion)}'`, raw: text };
  }
  for (const name of OPTIONAL_ATTRIBUTES) {
    const value = event[name];
    if (value !== undefined && typeof value !== 'string') {
      return { ok: false, error: `the attribute '${name}' is not a string`, raw: text };
    }
  }
  // The parsed object becomes the envelope: one object per message rather than a copy of it. Extension attributes of
  // other producers stay on it, as CloudEvents asks of an intermediary.
  event.datacontenttype = 'application/json';
  if (event.data === undefined) event.data = null;
  const envelope = event as unknown as Envelope;
  return { ok: true, envelope };
}

/**
 * Reads the field list of a stream entry. Besides what {@link encodeRedisEntry} writes, it reads the binary layout
 * (`headers <json> body <json>`) Gantry wrote before, and headers written as fields of their own
 * (`ce-id <id> ce-type <type> ... body <json>`), as a foreign producer may write them. Never throws: an entry that is
 * not a Gantry message comes back as `ok: false`, with `raw` holding its `event` or `body` field, or all its fields as
 * a JSON object when it has neither.
 */
export function decodeRedisEntry(fields: readonly string[]): Decoded {
  // What encodeRedisEntry writes, looked for before anything else.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === EVENT_FIELD) return decodeEventJson(fields[i + 1] as string);
  }
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
