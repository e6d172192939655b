import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../codec.ts';
import { createEnvelope, type Envelope } from '../envelope.ts';
import { decodeRedisEntry, encodeRedisEntry, redisRetryKey, redisStreamKey } from './codec.ts';

const envelope = createEnvelope({
  stream: 'orders.created',
  data: { id: 7, note: 'héllo' },
  source: 'orders@1.2.0',
  key: 'customer-9',
  tracking: { requestId: 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
});

describe('redis entry codec', () => {
  it('writes the whole message as one CloudEvents JSON field, and reads it back', () => {
    const fields = encodeRedisEntry(envelope);
    expect(fields).toHaveLength(2);
    expect(fields[0]).toBe('event');
    expect(JSON.parse(fields[1] as string)).toMatchObject({
      specversion: '1.0',
      id: envelope.id,
      type: 'orders.created',
      subject: 'customer-9',
      datacontenttype: 'application/json',
      data: { id: 7, note: 'héllo' },
    });
    expect(decodeRedisEntry(fields)).toEqual({ ok: true, envelope });
  });

  it('writes valid CloudEvents JSON whatever attributes an envelope has, and reads it back whole', () => {
    const every: Envelope = {
      ...createEnvelope({
        stream: 'orders.created',
        data: null,
        source: 'orders@1.2.0',
        key: 'quote " backslash \\ newline \n é \u2028 😀',
        idempotencyKey: 'order-7',
        tracking: { requestId: 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      }),
      tracestate: 'vendor=a,other=b',
    };
    const bare = createEnvelope({ stream: 's', data: [1], source: 'x@1' });
    for (const sample of [envelope, every, bare]) {
      const fields = encodeRedisEntry(sample);
      // The envelope's fields are CloudEvents attribute names: the JSON object is the envelope itself.
      expect(JSON.parse(fields[1] as string)).toEqual(sample);
      expect(decodeRedisEntry(fields)).toEqual({ ok: true, envelope: sample });
    }
  });

  it('still reads entries of the binary layout (headers and body fields) written before', () => {
    for (const sample of [envelope, createEnvelope({ stream: 's', data: [1], source: 'x@1' })]) {
      const { headers, body } = encodeMessage(sample);
      expect(decodeRedisEntry(['headers', JSON.stringify(headers), 'body', body])).toEqual({
        ok: true,
        envelope: sample,
      });
    }
  });

  it('reads headers written as fields of their own by a foreign producer', () => {
    const fields = [
      'ce-specversion',
      '1.0',
      'ce-id',
      'x-1',
      'ce-source',
      'legacy',
      'ce-type',
      't',
      'ce-time',
      '2026-01-01T00:00:00Z',
    ];
    const decoded = decodeRedisEntry([...fields, 'body', '{"n":1}']);
    expect(decoded).toMatchObject({ ok: true, envelope: { id: 'x-1', source: 'legacy', data: { n: 1 } } });
  });

  it('turns an entry that is not a Gantry message into a decode error with its bytes, never a throw', () => {
    expect(decodeRedisEntry(['event', 'not json'])).toMatchObject({
      ok: false,
      raw: 'not json',
      error: expect.stringContaining("'event' field is not JSON"),
    });
    expect(decodeRedisEntry(['event', '[1]'])).toMatchObject({ ok: false, error: expect.stringContaining('object') });
    expect(decodeRedisEntry(['event', '{"specversion":"1.0","id":"a"}'])).toMatchObject({
      ok: false,
      error: 'missing CloudEvents attribute(s): source, type, time',
    });
    const valid = { specversion: '1.0', id: 'a', source: 's', type: 't', time: 'now', data: 1 };
    expect(decodeRedisEntry(['event', JSON.stringify({ ...valid, specversion: '0.3' })])).toMatchObject({
      ok: false,
      error: expect.stringContaining('specversion'),
    });
    expect(decodeRedisEntry(['event', JSON.stringify({ ...valid, subject: 7 })])).toMatchObject({
      ok: false,
      error: "the attribute 'subject' is not a string",
    });
    expect(decodeRedisEntry(['event', JSON.stringify(valid)])).toMatchObject({ ok: true, envelope: { data: 1 } });
    expect(decodeRedisEntry(['body', '\u0000garbage{'])).toMatchObject({
      ok: false,
      raw: '\u0000garbage{',
      error: expect.stringContaining('ce-id'),
    });
    expect(decodeRedisEntry(['headers', 'not json', 'body', '{}'])).toMatchObject({
      ok: false,
      raw: '{}',
      error: expect.stringContaining("'headers'"),
    });
    expect(decodeRedisEntry(['headers', '{"ce-id":1}', 'body', '{}'])).toMatchObject({ ok: false });
    expect(
      decodeRedisEntry([
        'headers',
        JSON.stringify({ 'ce-specversion': '1.0', 'ce-id': 'a', 'ce-source': 's', 'ce-type': 't', 'ce-time': 'now' }),
        'body',
        '{oops',
      ]),
    ).toMatchObject({
      ok: false,
      error: expect.stringContaining('not JSON'),
    });
    expect(decodeRedisEntry(['producer', 'cron', 'payload', '42'])).toEqual({
      ok: false,
      error: expect.stringContaining("no 'body' field"),
      raw: '{"producer":"cron","payload":"42"}',
    });
  });

  it('names keys with the stream as a hash tag', () => {
    expect(redisStreamKey('gantry:', 'orders.created')).toBe('gantry:{orders.created}');
    expect(redisRetryKey('gantry:', 'orders.created', 'billing')).toBe('gantry:{orders.created}:retry:billing');
  });
});
