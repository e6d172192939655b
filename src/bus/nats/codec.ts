import type { Msg, MsgHdrsImpl, MsgImpl } from '@nats-io/transport-node';
import { type Decoded, decodeMessage, type WireMessage } from '../codec.ts';

/** The header JetStream deduplicates publishes on, within the stream's duplicate window. */
const MSG_ID = 'Nats-Msg-Id';

/** A header value may not break out of its line: the client refuses CR and LF in values, and so does this codec. */
const LINE_BREAK = /[\r\n]/;

/**
 * The NATS headers of an encoded message (CloudEvents binary mode: attributes as `ce-*` headers, `data` as the body)
 * plus `Nats-Msg-Id`, the envelope id JetStream deduplicates on. NATS keeps header names as written, so they come back
 * exactly as the codec set them.
 *
 * The values go straight into the headers' map: the client's `append`/`set` would check the header name character by
 * character and look through every header already there on each call, over half of a publish's header cost, for
 * names that are the codec's own constants. Values are checked here for what the client would refuse (CR, LF).
 *
 * @param Headers - the client library's `MsgHdrsImpl` class, passed in because the library loads lazily.
 * @throws TypeError when a value holds CR or LF (a producer's key or request id, say), which would end its header.
 */
export function toNatsHeaders(wire: WireMessage, msgId: string, Headers: typeof MsgHdrsImpl): MsgHdrsImpl {
  const headers = new Headers();
  const map = headers.headers;
  for (const name in wire.headers) {
    const value = wire.headers[name] as string;
    if (LINE_BREAK.test(value)) throw new TypeError(`header ${name} holds a line break`);
    map.set(name, [value]);
  }
  if (LINE_BREAK.test(msgId)) throw new TypeError(`${MSG_ID} holds a line break`);
  map.set(MSG_ID, [msgId]);
  return headers;
}

/**
 * Reads a message delivered by JetStream back into an envelope. Never throws: a message without the `ce-*` headers or
 * with a body that is not JSON (a foreign producer's, say) comes back as `ok: false` with its body as text.
 */
export function decodeNatsMessage(msg: Msg): Decoded {
  return decodeMessage(ceHeaders(msg), msg.string());
}

const utf8 = new TextDecoder();

/**
 * The headers of a message but JetStream's own (`Nats-*`), first value of each. The header block is read here from the
 * message's bytes, which the client's `MsgImpl` exposes in its typings: its own parser checks every name character by
 * character and looks through the headers already read for each line, more than the rest of a delivery's decoding.
 * A message of another shape (another client version) is read through `msg.headers`.
 */
function ceHeaders(msg: Msg): Record<string, string> {
  const headers: Record<string, string> = {};
  const { _msg: arg, _rdata: bytes } = msg as Partial<MsgImpl>;
  if (bytes instanceof Uint8Array && typeof arg?.hdr === 'number') {
    if (arg.hdr > 0) readHeaderBlock(utf8.decode(bytes.subarray(0, arg.hdr)), headers);
    return headers;
  }
  const source = msg.headers;
  if (source !== undefined) {
    for (const [name, values] of source) {
      if (values[0] !== undefined && !name.startsWith('Nats-')) headers[name] = values[0];
    }
  }
  return headers;
}

/**
 * Reads a NATS header block (`NATS/1.0[ status]\r\n`, then `name: value\r\n` lines, then an empty line) as the
 * client does: a line without a colon is skipped, values are trimmed, the first value of a repeated name is kept.
 */
function readHeaderBlock(block: string, into: Record<string, string>): void {
  let start = block.indexOf('\r\n') + 2;
  if (start === 1) return;
  while (start < block.length) {
    let end = block.indexOf('\r\n', start);
    if (end === -1) end = block.length;
    const colon = block.indexOf(':', start);
    if (colon > start && colon < end) {
      const name = block.slice(start, colon);
      if (!name.startsWith('Nats-') && into[name] === undefined) into[name] = block.slice(colon + 1, end).trim();
    }
    start = end + 2;
  }
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
  // Found by its dots rather than by splitting the subject into a dozen strings: this runs for every delivery.
  let dots = 0;
  for (let i = ackSubject.indexOf('.'); i !== -1; i = ackSubject.indexOf('.', i + 1)) dots++;
  let start = 0;
  for (let token = dots === 8 ? 4 : 6; token > 0; token--) {
    const dot = ackSubject.indexOf('.', start);
    if (dot === -1) return 1;
    start = dot + 1;
  }
  const end = ackSubject.indexOf('.', start);
  const count = Number(ackSubject.slice(start, end === -1 ? ackSubject.length : end));
  return Number.isSafeInteger(count) && count > 0 ? count : 1;
}
