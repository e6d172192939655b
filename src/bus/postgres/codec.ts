import { GantryError } from '../../errors/gantry-error.ts';
import { decodeMessage, encodeMessage } from '../codec.ts';
import type { Envelope } from '../envelope.ts';

/** A message as the publish statement takes it: one element of each of its array parameters. */
export interface MessageRow {
  stream: string;
  /** The partition key (`subject`), kept in its own column for readers of the table. */
  key: string | null;
  /** The CloudEvents headers of the wire codec, as JSON text (cast to jsonb by the statement). */
  headers: string;
  body: string;
}

/** What a claim reads back of a message. */
export interface ClaimedRow {
  id: string;
  attempts: number;
  /** Whatever the `headers` jsonb holds: an object of strings when a Gantry bus wrote it. */
  headers: unknown;
  body: string | null;
  /** False when the message row is missing (deleted by hand): the delivery then comes out as undecodable. */
  found: boolean;
}

/** A decoded message, or why it could not be decoded: the fields of a `Delivery` that depend on the bytes. */
export type DecodedRow =
  | { envelope: Envelope; decodeError?: undefined; raw?: undefined }
  | { envelope: null; decodeError: string; raw: string };

/**
 * Turns an envelope into the columns of a message, using the shared wire codec (CloudEvents binary mode).
 *
 * @throws GantryError `GANTRY_ERR_STREAM_INVALID_MESSAGE` when a header or the body holds a NUL character: PostgreSQL
 *   text cannot store it, and refusing the one message here keeps it from failing a whole batch of publishes.
 */
export function encodeRow(stream: string, envelope: Envelope): MessageRow {
  const { headers, body } = encodeMessage(envelope);
  const headersText = JSON.stringify(headers);
  // JSON.stringify escapes a NUL as \u0000, which jsonb refuses too, so one test on the text covers both columns.
  if (headersText.includes('\\u0000') || body.includes('\u0000') || stream.includes('\u0000')) {
    throw new GantryError(
      'GANTRY_ERR_STREAM_INVALID_MESSAGE',
      `message ${envelope.id} holds a NUL character, which PostgreSQL cannot store`,
      {
        details: { stream, id: envelope.id },
      },
    );
  }
  return { stream, key: envelope.subject ?? null, headers: headersText, body };
}

/**
 * Reads a claimed row back into an envelope. Never throws: headers that are not an object of strings, a missing
 * attribute or a body that is not JSON come back as an undecodable delivery for the consumer runner to dead-letter.
 */
export function decodeRow(row: ClaimedRow): DecodedRow {
  const raw = row.body ?? '';
  if (!row.found) return { envelope: null, decodeError: `message ${row.id} is missing from the messages table`, raw };
  if (typeof row.headers !== 'object' || row.headers === null || Array.isArray(row.headers)) {
    return { envelope: null, decodeError: 'headers are not a JSON object', raw };
  }
  const decoded = decodeMessage(stringsOnly(row.headers as Record<string, unknown>), raw);
  return decoded.ok ? { envelope: decoded.envelope } : { envelope: null, decodeError: decoded.error, raw: decoded.raw };
}

/**
 * The headers whose values are strings, the only CloudEvents attribute values: a foreign producer may write numbers
 * or nulls. What a Gantry bus wrote is all strings and is used as it is, without a copy per message.
 */
function stringsOnly(headers: Record<string, unknown>): Record<string, string> {
  for (const name in headers) {
    if (typeof headers[name] !== 'string') {
      const strings: Record<string, string> = {};
      for (const [key, value] of Object.entries(headers)) if (typeof value === 'string') strings[key] = value;
      return strings;
    }
  }
  return headers as Record<string, string>;
}
