import { type HostPlugin, requireRole, service, t } from 'gantry';
import { OidcLogin, OidcSettingsSchema } from 'gantry/auth';
import { startTestHost, type TestHost } from 'gantry/testing';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcProvider, TEST_ACCOUNT, type TestOidcProvider } from '../support/oidc-provider.ts';

// The browser session as an auth method of events: `auth: 'session'`, `['bearer', 'session']`, the host default,
// roles from the ID token for event roles and requireRole, CSRF on state-changing calls, and OpenAPI.

const REDIRECT = 'http://127.0.0.1:8798/auth/callback';
const ORIGIN = new URL(REDIRECT).origin;
const SESSION_SECRET = 'session-secret-for-session-auth-0123456789';
const JWT_SECRET = 'jwt-secret-for-session-auth-tests-0123456789';
const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'shop';
/** Not the default: the name must reach the cookies, the event checks and the OpenAPI scheme. */
const COOKIE = 'shop_session';
const Who = t.Object({ subject: t.String(), method: t.String(), roles: t.Array(t.String()) });

const who = async (_input: unknown, ctx: { auth?: { subject: string; method: string; roles: readonly string[] } }) => ({
  subject: ctx.auth?.subject ?? 'anonymous',
  method: ctx.auth?.method ?? 'none',
  roles: [...(ctx.auth?.roles ?? [])],
});

function shopWith(login: OidcLogin) {
  return service({ name: 'shop', version: '1.0.0', settings: t.Object({ login: OidcSettingsSchema }) })
    .setup((ctx) => login.configure(ctx.settings.login))
    .get('/orders/mine', { auth: 'session', response: Who }, who)
    .post('/orders', { auth: ['bearer', 'session'], body: t.Object({ item: t.String() }), response: { 201: Who } }, who)
    .get('/orders/machine', { auth: 'bearer', response: Who }, who)
    .get('/orders/support', { auth: { methods: 'session', roles: ['support'] }, response: Who }, who)
    .get('/orders/admin', { auth: { methods: ['session', 'bearer'], roles: ['admin'] }, response: Who }, who)
    .get('/orders/maybe', { auth: ['public', 'session'], response: Who }, who)
    .get('/orders/defaulted', { response: Who }, who);
}

/** Admin routes a plugin adds, guarded by requireRole. */
const ops: HostPlugin = {
  name: 'ops',
  register: (api) =>
    api.routes((app) => {
      app.get('/ops/support', { onRequest: requireRole('support') }, async () => ({ ok: true }));
      app.get('/ops/admin', { onRequest: requireRole('admin') }, async () => ({ ok: true }));
    }),
};

/** The cookies an answer sets, by name, with their values. */
function setCookies(headers: Record<string, unknown>): Map<string, string> {
  const raw = headers['set-cookie'];
  const lines = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  return new Map(
    lines.map((line) => {
      const pair = line.split(';')[0] ?? '';
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

describe('the browser session as an auth method of events', () => {
  let provider: TestOidcProvider;
  let app: TestHost;
  let cookie: string;
  let csrf: string;

  const bearer = async (sub = 'machine') => ({
    authorization: `Bearer ${await new SignJWT({ roles: [] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(sub)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JWT_SECRET))}`,
  });

  beforeAll(async () => {
    provider = await startOidcProvider({
      redirectUri: REDIRECT,
      claims: { realm_access: { roles: ['support', 'reader'] }, roles: ['admin'] },
    });
    const login = new OidcLogin({ protect: ['/app'], home: '/app/' });
    app = await startTestHost({
      services: [shopWith(login)],
      plugins: [login.plugin(), ops],
      config: {
        host: {
          admin: { protect: true },
          auth: {
            // Undeclared events take the default, which names the session too.
            default: 'bearer,session',
            jwt: { secret: JWT_SECRET, algorithms: 'HS256', issuer: ISSUER, audience: AUDIENCE },
          },
        },
      },
      settings: {
        shop: {
          login: {
            issuer: provider.issuer,
            clientId: provider.clientId,
            clientSecret: provider.clientSecret,
            redirectUrl: REDIRECT,
            sessionSecret: SESSION_SECRET,
            scopes: 'openid roles',
            // The nested claim: the top-level `roles` (admin) must not be read.
            rolesClaim: 'realm_access.roles',
            cookieName: COOKIE,
          },
        },
      },
    });
    // A whole login without a browser.
    const started = await app.request('GET', '/auth/login?returnTo=%2Fapp%2F');
    const loginCookie = setCookies(started.headers).get(`${COOKIE}_login`) as string;
    const back = await provider.signIn(started.headers.location as string);
    const done = await app.request('GET', `/auth/callback${back.search}`, undefined, {
      cookie: `${COOKIE}_login=${loginCookie}`,
    });
    expect(done.status, done.text).toBe(302);
    const cookies = setCookies(done.headers);
    csrf = cookies.get(`${COOKIE}_csrf`) as string;
    cookie = `${COOKIE}=${cookies.get(COOKIE)}; ${COOKIE}_csrf=${csrf}`;
  });
  afterAll(async () => {
    await app?.stop();
    await provider?.close();
  });

  it('accepts the session on an event that lists it, with the roles of the configured claim', async () => {
    const answer = await app.request('GET', '/orders/mine', undefined, { cookie });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ subject: TEST_ACCOUNT, method: 'session', roles: ['support', 'reader'] });
    expect((await app.request('GET', '/auth/session', undefined, { cookie })).body).toMatchObject({
      subject: TEST_ACCOUNT,
      roles: ['support', 'reader'],
    });
  });

  it('answers 401 problem+json without a session, with no challenge when the session is the only method', async () => {
    const none = await app.request('GET', '/orders/mine', undefined, { accept: 'application/json' });
    expect(none.status).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED' });
    expect(none.headers['www-authenticate']).toBeUndefined();
    // Beside bearer, only the bearer challenge is named.
    const mixed = await app.request('POST', '/orders', { item: 'tea' });
    expect(mixed.status).toBe(401);
    expect(mixed.headers['www-authenticate']).toBe('Bearer realm="gantry"');
    // A forged or foreign cookie is no session.
    const forged = await app.request('GET', '/orders/mine', undefined, {
      cookie: `${COOKIE}=eyJhbGciOiJkaXIifQ.a.b.c.d`,
    });
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED' });
    // An optional-auth event runs anonymously without one, and knows the caller with one.
    expect((await app.request('GET', '/orders/maybe')).body).toMatchObject({ method: 'none' });
    expect((await app.request('GET', '/orders/maybe', undefined, { cookie })).body).toMatchObject({
      subject: TEST_ACCOUNT,
    });
  });

  it('refuses the session on an event that accepts bearer tokens only', async () => {
    const refused = await app.request('GET', '/orders/machine', undefined, { cookie });
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED' });
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="gantry"');
    const machine = await app.request('GET', '/orders/machine', undefined, await bearer());
    expect(machine.body).toMatchObject({ subject: 'machine', method: 'bearer' });
  });

  it('needs the CSRF token for a POST made with the session, and not for one made with a bearer token', async () => {
    const without = await app.request('POST', '/orders', { item: 'tea' }, { cookie });
    expect(without.status).toBe(403);
    expect(without.headers['content-type']).toContain('application/problem+json');
    expect(without.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_CSRF' });
    const wrong = await app.request('POST', '/orders', { item: 'tea' }, { cookie, 'x-csrf-token': `${csrf}x` });
    expect(wrong.status).toBe(403);
    const foreign = await app.request(
      'POST',
      '/orders',
      { item: 'tea' },
      { cookie, 'x-csrf-token': csrf, origin: 'https://evil.example' },
    );
    expect(foreign.status).toBe(403);
    const ok = await app.request('POST', '/orders', { item: 'tea' }, { cookie, 'x-csrf-token': csrf, origin: ORIGIN });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body).toMatchObject({ subject: TEST_ACCOUNT, method: 'session' });
    const machine = await app.request('POST', '/orders', { item: 'tea' }, await bearer());
    expect(machine.status).toBe(201);
    expect(machine.body).toMatchObject({ method: 'bearer' });
  });

  it('checks event roles and requireRole against the roles of the session', async () => {
    expect((await app.request('GET', '/orders/support', undefined, { cookie })).status).toBe(200);
    const admin = await app.request('GET', '/orders/admin', undefined, { cookie });
    expect(admin.status).toBe(403);
    expect(admin.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_FORBIDDEN' });
    expect(await app.request('GET', '/ops/support', undefined, { cookie })).toMatchObject({
      status: 200,
      body: { ok: true },
    });
    expect((await app.request('GET', '/ops/support')).status).toBe(401);
    expect((await app.request('GET', '/ops/admin', undefined, { cookie })).status).toBe(403);
  });

  it('lets the host default name the session for events that declare nothing', async () => {
    expect((await app.request('GET', '/orders/defaulted', undefined, { cookie })).body).toMatchObject({
      subject: TEST_ACCOUNT,
      method: 'session',
    });
    expect((await app.request('GET', '/orders/defaulted')).status).toBe(401);
  });

  it('documents the session as a cookie security scheme named after the session cookie', async () => {
    const document = (await app.request('GET', '/openapi.json')).body as {
      components: { securitySchemes: Record<string, Record<string, string>> };
      paths: Record<string, Record<string, { security: Record<string, string[]>[] }>>;
    };
    expect(document.components.securitySchemes.sessionAuth).toMatchObject({
      type: 'apiKey',
      in: 'cookie',
      name: COOKIE,
    });
    expect(document.paths['/orders/mine']?.get?.security).toEqual([{ sessionAuth: [] }]);
    expect(document.paths['/orders']?.post?.security).toEqual([{ bearerAuth: [] }, { sessionAuth: [] }]);
    expect(document.paths['/orders/support']?.get?.security).toEqual([{ sessionAuth: ['support'] }]);
    expect(document.paths['/orders/maybe']?.get?.security).toEqual([{ sessionAuth: [] }, {}]);
  });
});

describe('the session method without a browser login', () => {
  const lonely = service({ name: 'lonely', version: '1.0.0' }).get(
    '/mine',
    { auth: ['public', 'session'], response: Who },
    who,
  );

  it('stops start-up naming the events that accept sessions', async () => {
    const started = startTestHost({ services: [lonely] });
    const error = (await started.then(
      async (app) => {
        await app.stop();
        return new Error('started');
      },
      (e: unknown) => e,
    )) as Error & { code?: string };
    expect(error.code).toBe('GANTRY_ERR_AUTH_MISCONFIGURED');
    expect(error.message).toContain("'session'");
    expect(error.message).toContain('lonely: GET /mine');
  });

  it('stops start-up too when the login is there but off (no issuer)', async () => {
    const login = new OidcLogin({ protect: [] });
    const owner = service({ name: 'owner', version: '1.0.0', settings: t.Object({ login: OidcSettingsSchema }) })
      .setup((ctx) => login.configure(ctx.settings.login))
      .get('/mine', { auth: 'session', response: Who }, who);
    await expect(startTestHost({ services: [owner], plugins: [login.plugin()] })).rejects.toMatchObject({
      code: 'GANTRY_ERR_AUTH_MISCONFIGURED',
    });
  });
});
