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

  it('counts an empty attribute as missing and keeps only the optional attributes present', () => {
    const headers = {
      'ce-specversion': '1.0',
      'ce-id': '',
      'ce-source': 'x@1.0.0',
      'ce-type': 's.t',
      'ce-time': '2026-01-01T00:00:00.000Z',
    };
    const missing = decodeMessage(headers, '1');
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.error).toBe('missing CloudEvents attribute(s): ce-id');
    const decoded = decodeMessage({ ...headers, 'ce-id': 'm-1', 'ce-requestid': 'r-9' }, '{"a":1}');
    expect(decoded).toEqual({
      ok: true,
      envelope: {
        specversion: '1.0',
        id: 'm-1',
        source: 'x@1.0.0',
        type: 's.t',
        time: '2026-01-01T00:00:00.000Z',
        datacontenttype: 'application/json',
        data: { a: 1 },
        requestid: 'r-9',
      },
    });
  });

  it('refuses another CloudEvents version', () => {
    const wire = encodeMessage(createEnvelope({ stream: 's.t', data: 1, source: 'x@1.0.0' }));
    const decoded = decodeMessage({ ...wire.headers, 'ce-specversion': '0.3' }, wire.body);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error).toBe("unsupported ce-specversion '0.3'");
  });
});
