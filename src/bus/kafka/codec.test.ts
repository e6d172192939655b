import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../envelope.ts';
import {
  ATTEMPT_HEADER,
  decodeKafkaRecord,
  encodeKafkaRecord,
  NOT_BEFORE_HEADER,
  readAttempt,
  readKafkaHeaders,
  readNotBefore,
  retryHeaders,
} from './codec.ts';

const envelope = createEnvelope({
  stream: 'orders.placed',
  data: { id: 7, text: 'héllo' },
  source: 'orders@1.0.0',
  key: 'order-7',
  tracking: {
    requestId: 'r-1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'a=b',
  },
});

function names(headers: Map<Buffer, Buffer>): string[] {
  return [...headers.keys()].map((name) => name.toString('utf8')).sort();
}

describe('the Kafka record codec', () => {
  it('writes the CloudEvents attributes as ce_ headers, data as the value and subject as the key', () => {
    const record = encodeKafkaRecord(envelope);
    expect(record.key?.toString('utf8')).toBe('order-7');
    expect(JSON.parse(record.value.toString('utf8'))).toEqual({ id: 7, text: 'héllo' });
    expect(names(record.headers)).toEqual([
      'ce_id',
      'ce_requestid',
      'ce_source',
      'ce_specversion',
      'ce_subject',
      'ce_time',
      'ce_traceparent',
      'ce_tracestate',
      'ce_type',
      'content-type',
    ]);
  });

  it('round-trips an envelope through the record', () => {
    const record = encodeKafkaRecord(envelope);
    expect(decodeKafkaRecord(readKafkaHeaders(record.headers), record.value)).toEqual({ ok: true, envelope });
  });

  it('leaves the key out when the envelope has no subject', () => {
    const record = encodeKafkaRecord(createEnvelope({ stream: 's.t', data: 1, source: 'x@1.0.0' }));
    expect(record.key).toBeUndefined();
  });

  it('reads ce- headers as written by the HTTP spelling too', () => {
    const headers = readKafkaHeaders(new Map([[Buffer.from('ce-id'), Buffer.from('abc')]]));
    expect(headers).toEqual({ 'ce-id': 'abc' });
  });

  it('reads a header without a value as the empty string', () => {
    const headers = readKafkaHeaders(new Map<Buffer | undefined, Buffer | undefined>([[Buffer.from('x'), undefined]]));
    expect(headers).toEqual({ x: '' });
  });

  it('turns a record without attributes into a poison message rather than throwing', () => {
    const decoded = decodeKafkaRecord(readKafkaHeaders(new Map()), Buffer.from('\u0000garbage{'));
    expect(decoded).toMatchObject({
      ok: false,
      raw: '\u0000garbage{',
      error: expect.stringContaining('missing CloudEvents attribute'),
    });
    expect(decodeKafkaRecord({}, undefined)).toMatchObject({ ok: false, raw: '' });
  });

  it('reads the attempt and not-before headers, with safe defaults', () => {
    expect(readAttempt({ [ATTEMPT_HEADER]: '3' })).toBe(3);
    expect(readAttempt({})).toBe(1);
    expect(readAttempt({ [ATTEMPT_HEADER]: 'zero' })).toBe(1);
    expect(readAttempt({ [ATTEMPT_HEADER]: '0' })).toBe(1);
    expect(readNotBefore({ [NOT_BEFORE_HEADER]: '1700000000000' })).toBe(1_700_000_000_000);
    expect(readNotBefore({})).toBe(0);
    expect(readNotBefore({ [NOT_BEFORE_HEADER]: 'soon' })).toBe(0);
  });

  it('keeps the original headers of a retried record byte for byte and replaces attempt and not-before', () => {
    const original = encodeKafkaRecord(envelope).headers;
    original.set(Buffer.from(ATTEMPT_HEADER), Buffer.from('2'));
    original.set(Buffer.from(NOT_BEFORE_HEADER), Buffer.from('1'));
    const retried = retryHeaders(original, 3, 1_700_000_000_000.4);
    const read = readKafkaHeaders(retried);
    expect(read[ATTEMPT_HEADER]).toBe('3');
    expect(read[NOT_BEFORE_HEADER]).toBe('1700000000001');
    expect(names(retried).filter((n) => n.startsWith('gantry-'))).toEqual([ATTEMPT_HEADER, NOT_BEFORE_HEADER]);
    expect(decodeKafkaRecord(read, encodeKafkaRecord(envelope).value)).toEqual({ ok: true, envelope });
  });
});
