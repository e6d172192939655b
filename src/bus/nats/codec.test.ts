import { headers, type Msg } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../codec.ts';
import { createEnvelope } from '../envelope.ts';
import { decodeNatsMessage, deliveryCount, toNatsHeaders } from './codec.ts';

/** A delivered message as the client hands it over, reduced to what the codec reads. */
function delivered(body: string, hdrs?: ReturnType<typeof headers>): Msg {
  return { headers: hdrs, string: () => body } as unknown as Msg;
}

describe('NATS codec', () => {
  it('round-trips an envelope through NATS headers, ignoring JetStream headers', () => {
    const envelope = createEnvelope({ stream: 'orders.placed', data: { id: 7 }, source: 'orders@1.0.0', key: 'k' });
    const wire = encodeMessage(envelope);
    const hdrs = toNatsHeaders(wire, headers);
    hdrs.set('Nats-Msg-Id', envelope.id);
    expect(decodeNatsMessage(delivered(wire.body, hdrs))).toEqual({ ok: true, envelope });
  });

  it('reports a message without CloudEvents headers as undecodable, with its body', () => {
    const decoded = decodeNatsMessage(delivered('\u0000garbage{'));
    expect(decoded).toMatchObject({ ok: false, raw: '\u0000garbage{', error: expect.stringContaining('ce-id') });
  });

  it('reads the delivery count from both forms of the ack subject', () => {
    expect(deliveryCount('$JS.ACK.ORDERS.billing.3.120.96.1700000000000000000.4')).toBe(3);
    expect(deliveryCount('$JS.ACK.hub.ACC.ORDERS.billing.2.120.96.1700000000000000000.4.r4nd')).toBe(2);
    expect(deliveryCount('not-an-ack-subject')).toBe(1);
  });
});
