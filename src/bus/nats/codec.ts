import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { type Decoded, decodeMessage, type WireMessage } from '../codec.ts';

/**
 * Copies the CloudEvents headers of an encoded message onto NATS headers (binary mode: attributes as `ce-*` headers,
 * `data` as the body). NATS keeps header names as written, so they come back exactly as the codec set them.
 *
 * @param create - the client library's `headers()` factory, passed in because the library loads lazily.
 */
export function toNatsHeaders(wire: WireMessage, create: () => MsgHdrs): MsgHdrs {
  const headers = create();
  // `append`, not `set`: the headers are new, and `set` would first search them for a value to replace (a third of
  // a publish's CPU).
  for (const name in wire.headers) headers.append(name, wire.headers[name] as string);
  return headers;
}

/**
 * Reads a message delivered by JetStream back into an envelope. Never throws: a message without the `ce-*` headers or
 * with a body that is not JSON (a foreign producer's, say) comes back as `ok: false` with its body as text.
 */
export function decodeNatsMessage(msg: Msg): Decoded {
  const headers: Record<string, string> = {};
  const source = msg.headers;
  if (source !== undefined) {
    for (const [name, values] of source) {
      // JetStream's own headers (Nats-Msg-Id, ...) are not CloudEvents attributes.
      if (values[0] !== undefined && !name.startsWith('Nats-')) headers[name] = values[0];
    }
  }
  return decodeMessage(headers, msg.string());
}

/**
 * The delivery count JetStream writes in the ack subject of a message it delivers: 1 on the first delivery.
 * The subject is `$JS.ACK.<stream>.<consumer>.<count>.<stream seq>.<consumer seq>.<time>.<pending>`, or, from servers
 * that add the domain and account, `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<count>...` (12 tokens).
 *
 * @example
 * deliveryCount('$JS.ACK.ORDERS.billing.3.120.96.1700000000000000000.4'); // 3
 */
export function deliveryCount(ackSubject: string): number {
  const tokens = ackSubject.split('.');
  const count = Number(tokens.length === 9 ? tokens[4] : tokens[6]);
  return Number.isSafeInteger(count) && count > 0 ? count : 1;
}
