import { type headers, type Msg, MsgHdrsImpl, MsgImpl, type Publisher } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../codec.ts';
import { createEnvelope } from '../envelope.ts';
import { decodeNatsMessage, deliveryCount, toNatsHeaders } from './codec.ts';

const encoder = new TextEncoder();

/** A delivered message reduced to what the codec reads when the message is not the client's own `MsgImpl`. */
function delivered(body: string, hdrs?: ReturnType<typeof headers>): Msg {
  return { headers: hdrs, string: () => body } as unknown as Msg;
}

/** A message as the client's parser hands it over: the header block and the body in one buffer. */
function received(headerBlock: string, body: string): MsgImpl {
  const hdr = encoder.encode(headerBlock);
  const data = new Uint8Array([...hdr, ...encoder.encode(body)]);
  const arg = { subject: encoder.encode('gantry.orders'), reply: encoder.encode('$JS.ACK.X.y.1.1.1.1.0'), sid: 1 };
  return new MsgImpl({ ...arg, hdr: hdr.length, size: data.length }, data, {} as Publisher);
}

describe('NATS codec', () => {
  it('round-trips an envelope through NATS headers, ignoring JetStream headers', () => {
    const envelope = createEnvelope({ stream: 'orders.placed', data: { id: 7 }, source: 'orders@1.0.0', key: 'k' });
    const wire = encodeMessage(envelope);
    const hdrs = toNatsHeaders(wire, envelope.id, MsgHdrsImpl);
    expect(hdrs.get('Nats-Msg-Id')).toBe(envelope.id);
    expect(decodeNatsMessage(delivered(wire.body, hdrs))).toEqual({ ok: true, envelope });
  });

  it('round-trips an envelope through the bytes on the wire', () => {
    const envelope = createEnvelope({
      stream: 'orders.placed',
      data: { id: 7, name: 'Zoë: "quoted"\r\n' },
      source: 'orders@1.0.0',
      key: 'k: with colon',
      tracking: { requestId: 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    const wire = encodeMessage(envelope);
    const block = new TextDecoder().decode(toNatsHeaders(wire, envelope.id, MsgHdrsImpl).encode());
    expect(decodeNatsMessage(received(block, wire.body))).toEqual({ ok: true, envelope });
  });

  it('reads header bytes as the client does: status line, trimmed values, first of a repeated name, no Nats-*', () => {
    const block =
      'NATS/1.0 100 Idle\r\nce-id:  a \r\nnot a header\r\nce-id: b\r\nNats-Msg-Id: x\r\nce-source: s@1\r\n' +
      'ce-type: t\r\nce-time: 2026-01-01T00:00:00.000Z\r\nce-specversion: 1.0\r\ncontent-type: application/json\r\n\r\n';
    const fromBytes = decodeNatsMessage(received(block, '{"n":1}'));
    const parsed = received(block, '{"n":1}');
    const throughClient = decodeNatsMessage(delivered('{"n":1}', parsed.headers));
    expect(fromBytes).toEqual(throughClient);
    expect(fromBytes).toMatchObject({ ok: true, envelope: { id: 'a', source: 's@1', data: { n: 1 } } });
  });

  it('refuses a header value with a line break rather than let it start a header of its own', () => {
    const envelope = createEnvelope({ stream: 's', data: {}, source: 'orders@1.0.0', key: 'k\r\nce-id: forged' });
    expect(() => toNatsHeaders(encodeMessage(envelope), envelope.id, MsgHdrsImpl)).toThrow(/line break/);
  });

  it('reports a message without CloudEvents headers as undecodable, with its body', () => {
    const decoded = decodeNatsMessage(delivered('\u0000garbage{'));
    expect(decoded).toMatchObject({ ok: false, raw: '\u0000garbage{', error: expect.stringContaining('ce-id') });
    const bare = decodeNatsMessage(received('', 'plain'));
    expect(bare).toMatchObject({ ok: false, raw: 'plain', error: expect.stringContaining('ce-id') });
  });

  it('reads the delivery count from both forms of the ack subject', () => {
    expect(deliveryCount('$JS.ACK.ORDERS.billing.3.120.96.1700000000000000000.4')).toBe(3);
    expect(deliveryCount('$JS.ACK.hub.ACC.ORDERS.billing.2.120.96.1700000000000000000.4.r4nd')).toBe(2);
    expect(deliveryCount('not-an-ack-subject')).toBe(1);
    expect(deliveryCount('$JS.ACK.ORDERS.billing')).toBe(1);
    expect(deliveryCount('$JS.ACK.ORDERS.billing.x.120.96.1700000000000000000.4')).toBe(1);
    expect(deliveryCount('$JS.ACK.ORDERS.billing.0.120.96.1700000000000000000.4')).toBe(1);
    expect(deliveryCount('$JS.ACK.a.b.c.d.7')).toBe(7);
  });
});
