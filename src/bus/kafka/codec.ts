import { type Decoded, decodeMessage, encodeMessage } from '../codec.ts';
import type { Envelope } from '../envelope.ts';

/** Header of a message on a retry topic: which delivery of the message it will be (2 for the first retry). */
export const ATTEMPT_HEADER = 'gantry-attempt';
/** Header of a message on a retry topic: the epoch milliseconds before which it must not be delivered. */
export const NOT_BEFORE_HEADER = 'gantry-not-before';

/** A Kafka record as the adapter writes and reads it: raw bytes, no client-side serializers. */
export interface KafkaRecordBytes {
  /** The partition key: the envelope's `subject`, so one key always lands on one partition. */
  key?: Buffer;
  value: Buffer;
  headers: Map<Buffer, Buffer>;
}

/**
 * Writes an envelope as a Kafka record in CloudEvents binary mode: the attributes become headers, `data` the value,
 * `subject` the key. Header names follow the CloudEvents Kafka binding (`ce_id`, `ce_type`, … and `content-type`)
 * rather than the HTTP spelling `ce-id` of {@link encodeMessage}, so CloudEvents-aware Kafka tools read them.
 */
export function encodeKafkaRecord(envelope: Envelope): KafkaRecordBytes {
  const wire = encodeMessage(envelope);
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of Object.entries(wire.headers))
    headers.set(Buffer.from(toKafkaHeaderName(name)), Buffer.from(value));
  const record: KafkaRecordBytes = { value: Buffer.from(wire.body), headers };
  if (envelope.subject !== undefined) record.key = Buffer.from(envelope.subject);
  return record;
}

/**
 * Reads the headers of a consumed record as text, with CloudEvents names in the spelling of the shared codec
 * (`ce_id` → `ce-id`; `ce-id` is accepted too). A header without a value reads as the empty string; of repeated
 * names the last wins.
 */
export function readKafkaHeaders(
  headers: ReadonlyMap<Buffer | undefined, Buffer | undefined> | undefined,
): Record<string, string> {
  const read: Record<string, string> = {};
  if (!headers) return read;
  for (const [name, value] of headers) {
    if (name === undefined) continue;
    read[fromKafkaHeaderName(name.toString('utf8'))] =
      value === undefined || value === null ? '' : value.toString('utf8');
  }
  return read;
}

/** Decodes a consumed record into an envelope, or says why it is not one (a poison message). Never throws. */
export function decodeKafkaRecord(
  headers: Readonly<Record<string, string>>,
  value: Buffer | undefined | null,
): Decoded {
  return decodeMessage(headers, value ? value.toString('utf8') : '');
}

/** The attempt a record carries: its `gantry-attempt` header, or 1 when absent or not a positive integer. */
export function readAttempt(headers: Readonly<Record<string, string>>): number {
  const attempt = Number(headers[ATTEMPT_HEADER]);
  return Number.isSafeInteger(attempt) && attempt >= 1 ? attempt : 1;
}

/** The epoch milliseconds before which a record must not be delivered: its `gantry-not-before` header, else 0. */
export function readNotBefore(headers: Readonly<Record<string, string>>): number {
  const notBefore = Number(headers[NOT_BEFORE_HEADER]);
  return Number.isFinite(notBefore) && notBefore > 0 ? notBefore : 0;
}

/**
 * The headers of a record handed back to its group through a retry topic: the original headers byte for byte (so a
 * poison message stays exactly as it came), with the attempt and not-before headers replaced.
 */
export function retryHeaders(
  original: ReadonlyMap<Buffer | undefined, Buffer | undefined> | undefined,
  attempt: number,
  notBefore: number,
): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of original ?? []) {
    if (name === undefined) continue;
    const text = name.toString('utf8');
    if (text === ATTEMPT_HEADER || text === NOT_BEFORE_HEADER) continue;
    headers.set(name, value ?? Buffer.alloc(0));
  }
  headers.set(Buffer.from(ATTEMPT_HEADER), Buffer.from(String(attempt)));
  headers.set(Buffer.from(NOT_BEFORE_HEADER), Buffer.from(String(Math.ceil(notBefore))));
  return headers;
}

function toKafkaHeaderName(name: string): string {
  return name.startsWith('ce-') ? `ce_${name.slice(3)}` : name;
}

function fromKafkaHeaderName(name: string): string {
  return name.startsWith('ce_') ? `ce-${name.slice(3)}` : name;
}
