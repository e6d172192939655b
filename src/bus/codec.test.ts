import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from './codec.ts';
import { createEnvelope } from './envelope.ts';

describe('the wire codec', () => {
  it('round-trips an envelope through headers and body', () => {
    const envelope = createEnvelope({
      stream: 'orders.placed',
      data: { id: 7, items: ['a'] },
      source: 'orders@1.0.0',
      key: 'order-7',
      tracking: { requestId: 'r-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    const wire = encodeMessage(envelope);
    expect(wire.headers['ce-subject']).toBe('order-7');
    const decoded = decodeMessage(wire.headers, wire.body);
    expect(decoded).toEqual({ ok: true, envelope });
  });

  it('reports a body that is not JSON instead of throwing', () => {
    const wire = encodeMessage(createEnvelope({ stream: 's.t', data: 1, source: 'x@1.0.0' }));
    const decoded = decodeMessage(wire.headers, '{not json');
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error).toMatch(/not JSON/);
  });

  it('names every missing attribute', () => {
    const decoded = decodeMessage({ 'ce-specversion': '1.0', 'ce-id': 'x' }, '1');
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error).toBe('missing CloudEvents attribute(s): ce-source, ce-type, ce-time');
  });
});
