import { service, t } from 'gantry';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SHOP = 'https://shop.example.com';
const BILLING = 'https://billing.example.com';
const HOST = 'https://host.example.com';
const Ok = t.Object({ ok: t.Boolean() });
const ok = async () => ({ ok: true });

const orders = service({ name: 'orders', version: '1.0.0', cors: { origins: [SHOP], credentials: true } })
  .get('/orders', { auth: 'public', response: Ok }, ok)
  .post('/orders', { auth: 'public', body: t.Object({ item: t.String() }), response: { 201: Ok } }, ok);
const billing = service({ name: 'billing', version: '1.0.0', cors: { origins: BILLING, maxAgeSeconds: 60 } }).get(
  '/billing/:id',
  { auth: 'public', params: t.Object({ id: t.String() }), response: Ok },
  ok,
);
const plain = service({ name: 'plain', version: '1.0.0' }).get('/plain', { auth: 'public', response: Ok }, ok);

const preflight = (app: TestHost, url: string, origin: string, method: string) =>
  app.request('OPTIONS', url, undefined, { origin, 'access-control-request-method': method });

describe('CORS per service', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [orders, billing, plain], config: { host: { cors: { origins: HOST } } } });
  });
  afterAll(() => app?.stop());

  it('answers a preflight with the policy of the service that owns the route', async () => {
    const shop = await preflight(app, '/orders', SHOP, 'POST');
    expect(shop.status).toBe(204);
    expect(shop.headers['access-control-allow-origin']).toBe(SHOP);
    expect(shop.headers['access-control-allow-credentials']).toBe('true');
    expect(shop.headers['access-control-allow-methods']).toContain('POST');

    const foreign = await preflight(app, '/orders', BILLING, 'POST');
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();

    const bill = await preflight(app, '/billing/42', BILLING, 'GET');
    expect(bill.headers['access-control-allow-origin']).toBe(BILLING);
    expect(bill.headers['access-control-allow-credentials']).toBeUndefined();
    expect(bill.headers['access-control-max-age']).toBe('60');
    expect((await preflight(app, '/billing/42', SHOP, 'GET')).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('applies the policy to simple requests', async () => {
    const shop = await app.request('GET', '/orders', undefined, { origin: SHOP });
    expect(shop.status).toBe(200);
    expect(shop.headers['access-control-allow-origin']).toBe(SHOP);
    expect(shop.headers.vary).toContain('Origin');
    const wrong = await app.request('GET', '/billing/7', undefined, { origin: SHOP });
    expect(wrong.status).toBe(200);
    expect(wrong.headers['access-control-allow-origin']).toBeUndefined();
    const right = await app.request('GET', '/billing/7', undefined, { origin: BILLING });
    expect(right.headers['access-control-allow-origin']).toBe(BILLING);
  });

  it("keeps the host's policy for services without one and for the host's own routes", async () => {
    expect(
      (await app.request('GET', '/plain', undefined, { origin: HOST })).headers['access-control-allow-origin'],
    ).toBe(HOST);
    expect(
      (await app.request('GET', '/plain', undefined, { origin: SHOP })).headers['access-control-allow-origin'],
    ).toBeUndefined();
    expect((await preflight(app, '/plain', HOST, 'GET')).headers['access-control-allow-origin']).toBe(HOST);
    expect(
      (await app.request('GET', '/health/live', undefined, { origin: HOST })).headers['access-control-allow-origin'],
    ).toBe(HOST);
    // An unknown path falls back to the host's policy too (and then 404s).
    expect((await preflight(app, '/nowhere', SHOP, 'GET')).headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('CORS per service from the host config', () => {
  let app: TestHost;
  const OTHER = 'https://other.example.com';
  beforeAll(async () => {
    app = await startTestHost({
      services: [orders, plain],
      environment: { GANTRY_CORS_SERVICES: JSON.stringify({ orders: { origins: OTHER }, plain: { origins: SHOP } }) },
    });
  });
  afterAll(() => app?.stop());

  it('lets host.cors.services win over what the service declares, and gives a policy to any service', async () => {
    expect((await preflight(app, '/orders', OTHER, 'POST')).headers['access-control-allow-origin']).toBe(OTHER);
    expect((await preflight(app, '/orders', SHOP, 'POST')).headers['access-control-allow-origin']).toBeUndefined();
    expect(
      (await app.request('GET', '/plain', undefined, { origin: SHOP })).headers['access-control-allow-origin'],
    ).toBe(SHOP);
  });
});

describe('CORS per service in prod', () => {
  it('stays closed when the service names no origins, and refuses credentials for any origin', async () => {
    const open = service({ name: 'open', version: '1.0.0', cors: { credentials: false } }).get(
      '/open',
      { auth: 'public', response: Ok },
      ok,
    );
    const app = await startTestHost({ services: [open], env: 'prod', config: { host: { allowEmbedded: true } } });
    try {
      const answer = await app.request('GET', '/open', undefined, { origin: SHOP });
      expect(answer.status).toBe(200);
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      expect((await preflight(app, '/open', SHOP, 'GET')).headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await app.stop();
    }
    const star = service({ name: 'star', version: '1.0.0', cors: { origins: '*', credentials: true } }).get(
      '/star',
      { auth: 'public', response: Ok },
      ok,
    );
    await expect(startTestHost({ services: [star] })).rejects.toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
      message: expect.stringContaining("service 'star'"),
    });
  });
});
