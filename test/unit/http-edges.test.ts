import { connect } from 'node:net';
import { service, t } from 'gantry';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const Ok = t.Object({ ok: t.Boolean() });
const edgy = service({ name: 'edgy', version: '1.0.0' })
  .get('/open', { auth: 'public', response: Ok }, async () => ({ ok: true }))
  .get('/scarce', { auth: 'public', rateLimit: { max: 2, windowMs: 60_000 }, response: Ok }, async () => ({ ok: true }))
  .post('/echo', { auth: 'public', body: t.Object({ data: t.Unknown() }), response: Ok }, async () => ({ ok: true }));

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 1; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** Sends raw bytes to the host's socket and returns everything it answers until it closes. */
function raw(port: number, bytes: string, waitMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    setTimeout(() => socket.destroy(), waitMs).unref();
  });
}

describe('the HTTP edges', () => {
  let app: TestHost;
  let port: number;
  beforeAll(async () => {
    app = await startTestHost({
      services: [edgy],
      config: {
        host: {
          address: '127.0.0.1',
          cors: { origins: 'https://app.example.com, https://admin.example.com' },
          rateLimit: { max: 40, windowMs: 600 },
          limits: { jsonDepth: 8, urlLength: 256, headerBytes: 2048 },
          timeouts: { requestMs: 2_000, headersMs: 400 },
        },
      },
    });
    port = Number(new URL(await app.host.listen()).port);
  });
  afterAll(async () => app.stop());

  it('answers CORS preflights for listed origins only', async () => {
    const preflight = (origin: string) =>
      app.request('OPTIONS', '/open', undefined, { origin, 'access-control-request-method': 'GET' });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers['access-control-allow-methods']).toContain('GET');
    const denied = await preflight('https://evil.example.com');
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const simple = await app.request('GET', '/open', undefined, { origin: 'https://admin.example.com' });
    expect(simple.headers['access-control-allow-origin']).toBe('https://admin.example.com');
    expect(simple.headers['access-control-expose-headers']).toContain('x-request-id');
  });

  it('adds security headers: nothing may load or frame an event answer, pages keep a policy that lets them run', async () => {
    const res = await app.request('GET', '/open');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toContain('max-age=');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers).not.toHaveProperty('x-dns-prefetch-control');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    const page = await app.request('GET', '/');
    expect(page.headers['content-security-policy']).toContain("script-src 'self';");
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(page.headers['content-security-policy']).not.toMatch(/script-src[^;]*unsafe-inline/);
    const docs = await app.request('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-security-policy']).toContain("script-src 'self' 'unsafe-inline'");
  });

  it('limits each client per event: 429 problem+json with Retry-After', async () => {
    expect((await app.request('GET', '/scarce')).status).toBe(200);
    expect((await app.request('GET', '/scarce')).status).toBe(200);
    const limited = await app.request('GET', '/scarce');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_RATE_LIMITED', status: 429 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Other events keep their own count.
    expect((await app.request('GET', '/open')).status).toBe(200);
  });

  it('limits each client host-wide, then lets it in again after the window', async () => {
    await new Promise((resolve) => setTimeout(resolve, 650));
    const statuses: number[] = [];
    for (let i = 0; i < 45; i++) statuses.push((await app.request('GET', '/open')).status);
    expect(statuses.slice(0, 40).every((status) => status === 200)).toBe(true);
    expect(statuses.slice(40)).toEqual([429, 429, 429, 429, 429]);
    expect((await app.request('GET', '/health/live')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 650));
    expect((await app.request('GET', '/open')).status).toBe(200);
  });

  it('refuses JSON nested deeper than the limit with a 400, before parsing it', async () => {
    expect((await app.request('POST', '/echo', { data: nested(6) })).status).toBe(200);
    const deep = await app.request('POST', '/echo', { data: nested(9) });
    expect(deep.status).toBe(400);
    expect(deep.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_JSON_TOO_DEEP' });
    // Brackets inside strings are text, not nesting.
    expect((await app.request('POST', '/echo', { data: '[[[[[[[[[[[[[[[[[[[[' })).status).toBe(200);
    const huge = `{"data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect((await app.request('POST', '/echo', huge)).body).toMatchObject({ code: 'GANTRY_ERR_HTTP_JSON_TOO_DEEP' });
  });

  it('refuses a URL longer than the limit with a 414', async () => {
    const res = await app.request('GET', `/open?q=${'x'.repeat(300)}`);
    expect(res.status).toBe(414);
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_URI_TOO_LONG' });
  });

  it('refuses headers larger than the limit with a 431 problem document', async () => {
    const answer = await raw(port, `GET /open HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(4_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('application/problem+json');
    expect(answer).toContain('GANTRY_ERR_HTTP_HEADERS_TOO_LARGE');
  });

  it('answers 408 to a client that sends its headers too slowly', async () => {
    const began = Date.now();
    const answer = await raw(port, 'GET /open HTTP/1.1\r\nHost: x\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('GANTRY_ERR_HTTP_REQUEST_TIMEOUT');
    expect(Date.now() - began).toBeLessThan(3_000);
  });
});

describe('CORS defaults', () => {
  it('allows any origin in dev and none in prod unless configured', async () => {
    const preflight = { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' };
    const dev = await startTestHost({ env: 'dev', inMemory: true, services: [edgy] });
    try {
      const res = await dev.request('OPTIONS', '/open', undefined, preflight);
      expect(res.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    } finally {
      await dev.stop();
    }
    const prod = await startTestHost({ env: 'prod', services: [edgy], config: { host: { allowEmbedded: true } } });
    try {
      const res = await prod.request('OPTIONS', '/open', undefined, preflight);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(
        (await prod.request('GET', '/open', undefined, { origin: 'http://localhost:5173' })).headers,
      ).not.toHaveProperty('access-control-allow-origin');
    } finally {
      await prod.stop();
    }
  });
});
