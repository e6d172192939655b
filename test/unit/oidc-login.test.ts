import { type HostPlugin, service, t } from 'gantry';
import { OidcLogin, OidcSettingsSchema } from 'gantry/auth';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activate } from '../../src/auth/oidc/login.ts';
import { SessionSealer } from '../../src/auth/oidc/session.ts';
import { startOidcProvider, TEST_ACCOUNT, type TestOidcProvider } from '../support/oidc-provider.ts';

const SESSION_SECRET = 'session-secret-for-tests-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1:8799/auth/callback';
const ORIGIN = new URL(REDIRECT).origin;
const Who = t.Object({ subject: t.String(), method: t.String() });

/** A service that owns the login settings and answers with who called. */
function shopWith(login: OidcLogin) {
  return service({ name: 'shop', version: '1.0.0', settings: t.Object({ login: OidcSettingsSchema }) })
    .setup((ctx) => login.configure(ctx.settings.login))
    .get('/api/me', { response: Who }, async (_input, ctx) => ({
      subject: ctx.auth?.subject ?? 'anonymous',
      method: ctx.auth?.method ?? 'none',
    }))
    .post('/api/things', { body: t.Object({ name: t.String() }), response: { 201: Who } }, async (_input, ctx) => ({
      subject: ctx.auth?.subject ?? 'anonymous',
      method: ctx.auth?.method ?? 'none',
    }));
}

/** A page of the app, added by a plugin like the web app's. */
const page: HostPlugin = {
  name: 'page',
  register: (api) =>
    api.routes((app) => app.get('/app/', async (_request, reply) => reply.type('text/html').send('<p>app</p>'))),
};

async function startShop(settings: Record<string, unknown>, env?: 'prod'): Promise<TestHost> {
  const login = new OidcLogin({ protect: ['/app', '/api'], home: '/app/' });
  return startTestHost({
    services: [shopWith(login)],
    plugins: [login.plugin(), page],
    settings: { shop: { login: settings } },
    ...(env ? { env, config: { host: { auth: { default: 'public' }, allowEmbedded: true } } } : {}),
  });
}

/** The cookies an answer sets, by name, with their attributes as written. */
function setCookies(headers: Record<string, unknown>): Map<string, string> {
  const raw = headers['set-cookie'];
  const lines = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line]));
}

const cookieValue = (line: string | undefined): string =>
  (line ?? '').split(';')[0]?.split('=').slice(1).join('=') ?? '';

describe('browser login off', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startShop({});
  });
  afterAll(() => app?.stop());

  it('leaves the app and its API open and adds no login routes', async () => {
    expect((await app.request('GET', '/app/')).status).toBe(200);
    expect(await app.request('GET', '/api/me')).toMatchObject({ status: 200, body: { subject: 'anonymous' } });
    expect((await app.request('GET', '/auth/login')).status).toBe(404);
  });
});

describe('browser login misconfigured', () => {
  it('stops start-up when the issuer is set without the rest', async () => {
    await expect(startShop({ issuer: 'http://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
      message: expect.stringContaining('clientId'),
    });
  });

  it('refuses plain http and a missing session secret in prod', async () => {
    const started = startShop(
      { issuer: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's', redirectUrl: REDIRECT },
      'prod',
    );
    const error = (await started.then(
      async (app) => {
        await app.stop();
        return new Error('started');
      },
      (e: unknown) => e,
    )) as Error;
    expect(error).toMatchObject({ code: 'GANTRY_ERR_CONFIG_INVALID' });
    expect(error.message).toContain('sessionSecret');
    expect(error.message).toContain('redirectUrl must be https');
  });
});

describe('cookie security of browser login', () => {
  const base = {
    clientId: 'c',
    clientSecret: 's',
    sessionSecret: SESSION_SECRET,
    scopes: 'profile',
    sessionMaxAgeSeconds: 600,
    rolesClaim: 'roles',
    cookieName: 'gantry_session',
  };
  it('marks cookies Secure everywhere but plain http on loopback in dev and test', () => {
    const https = { ...base, issuer: 'https://id.example.com', redirectUrl: 'https://app.example.com/auth/callback' };
    expect(activate(https, 'prod')?.secure).toBe(true);
    expect(activate(https, 'test')?.secure).toBe(true);
    expect(activate(https, 'prod')?.scope).toBe('openid profile');
    const loopback = { ...base, issuer: 'http://127.0.0.1:9000', redirectUrl: 'http://localhost:8080/auth/callback' };
    expect(activate(loopback, 'dev')?.secure).toBe(false);
    expect(() => activate(loopback, 'qa')).toThrow(/must be https/);
    expect(() => activate({ ...https, redirectUrl: 'http://app.example.com/auth/callback' }, 'dev')).toThrow(
      /redirectUrl must be https/,
    );
  });
});

describe('browser login on, against a real provider', () => {
  let provider: TestOidcProvider;
  let app: TestHost;
  const sealer = new SessionSealer(SESSION_SECRET);

  /** Starts a login: the provider URL and the login cookie it set. */
  async function startLogin(): Promise<{ location: URL; loginCookie: string; cookieLine: string }> {
    const started = await app.request('GET', '/auth/login?returnTo=%2Fapp%2F');
    expect(started.status).toBe(302);
    const cookieLine = setCookies(started.headers).get('gantry_session_login') as string;
    return { location: new URL(started.headers.location as string), loginCookie: cookieValue(cookieLine), cookieLine };
  }

  /** A whole login without a browser: the session and CSRF cookies. */
  async function logIn(): Promise<{ session: string; csrf: string; cookies: Map<string, string> }> {
    const { location, loginCookie } = await startLogin();
    const back = await provider.signIn(location.href);
    const done = await app.request('GET', `/auth/callback${back.search}`, undefined, {
      cookie: `gantry_session_login=${loginCookie}`,
    });
    expect(done.status, done.text).toBe(302);
    expect(done.headers.location).toBe('/app/');
    const cookies = setCookies(done.headers);
    return {
      session: cookieValue(cookies.get('gantry_session')),
      csrf: cookieValue(cookies.get('gantry_session_csrf')),
      cookies,
    };
  }

  beforeAll(async () => {
    provider = await startOidcProvider({ redirectUri: REDIRECT });
    app = await startShop({
      issuer: provider.issuer,
      clientId: provider.clientId,
      clientSecret: provider.clientSecret,
      redirectUrl: REDIRECT,
      sessionSecret: SESSION_SECRET,
      sessionMaxAgeSeconds: 3600,
    });
  });
  afterAll(async () => {
    await app?.stop();
    await provider?.close();
  });

  it('sends a page load without session to the login, and answers 401 problem+json to an API call', async () => {
    const navigation = await app.request('GET', '/app/', undefined, { 'sec-fetch-mode': 'navigate' });
    expect(navigation.status).toBe(302);
    expect(navigation.headers.location).toBe('/auth/login?returnTo=%2Fapp%2F');
    const call = await app.request('GET', '/api/me', undefined, {
      accept: 'application/json',
      'sec-fetch-mode': 'cors',
    });
    expect(call.status).toBe(401);
    expect(call.headers['content-type']).toContain('application/problem+json');
    expect(call.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED' });
    // A forged cookie is no session.
    const forged = await app.request('GET', '/api/me', undefined, {
      cookie: 'gantry_session=eyJhbGciOiJkaXIifQ.x.y.z.w',
    });
    expect(forged.status).toBe(401);
  });

  it('starts the login with state, nonce and an S256 PKCE challenge, in an HttpOnly, Lax cookie', async () => {
    const { location, cookieLine } = await startLogin();
    expect(location.origin).toBe(provider.issuer);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(location.searchParams.get('nonce')).toBeTruthy();
    expect(location.searchParams.get('redirect_uri')).toBe(REDIRECT);
    expect(location.searchParams.get('scope')?.split(' ')).toContain('openid');
    expect(cookieLine).toContain('HttpOnly');
    expect(cookieLine).toContain('SameSite=Lax');
    expect(cookieLine).toContain('Path=/auth/callback');
    expect(cookieLine).toContain('Max-Age=600');
    // Plain http on loopback in test: not Secure, or the browser would drop it.
    expect(cookieLine).not.toContain('Secure');
  });

  it('refuses a callback with no login in progress, or whose state does not match, with 400 problem+json', async () => {
    const none = await app.request('GET', '/auth/callback?code=abc&state=xyz');
    expect(none.status).toBe(400);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_LOGIN_FAILED' });

    const { loginCookie } = await startLogin();
    const wrong = await app.request('GET', '/auth/callback?code=abc&state=not-the-state', undefined, {
      cookie: `gantry_session_login=${loginCookie}`,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({
      code: 'GANTRY_ERR_AUTH_LOGIN_FAILED',
      detail: expect.stringContaining('state'),
    });
  });

  it('answers 401 when the PKCE verifier does not match the challenge the code was issued for', async () => {
    const { location } = await startLogin();
    const back = await provider.signIn(location.href);
    // The same state and nonce, another verifier: the provider must refuse the code.
    const tampered = await sealer.sealLogin(
      {
        state: location.searchParams.get('state') as string,
        nonce: location.searchParams.get('nonce') as string,
        codeVerifier: 'x'.repeat(43),
        returnTo: '/app/',
      },
      600,
    );
    const done = await app.request('GET', `/auth/callback${back.search}`, undefined, {
      cookie: `gantry_session_login=${tampered}`,
    });
    expect(done.status).toBe(401);
    expect(done.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED' });
    expect(done.headers['set-cookie']?.toString()).not.toContain('gantry_session=ey');
  });

  it('logs in: session cookie flags, the subject as ctx.auth, CSRF enforced, logout ends it', async () => {
    const { session, csrf, cookies } = await logIn();
    const sessionLine = cookies.get('gantry_session') as string;
    expect(sessionLine).toContain('HttpOnly');
    expect(sessionLine).toContain('SameSite=Lax');
    expect(sessionLine).toContain('Max-Age=3600');
    expect(sessionLine).toContain('Path=/');
    expect(cookies.get('gantry_session_csrf')).not.toContain('HttpOnly');
    expect(csrf.length).toBeGreaterThan(20);

    const cookie = `gantry_session=${session}; gantry_session_csrf=${csrf}`;
    expect(await app.request('GET', '/api/me', undefined, { cookie })).toMatchObject({
      status: 200,
      body: { subject: TEST_ACCOUNT, method: 'session' },
    });
    expect((await app.request('GET', '/auth/session', undefined, { cookie })).body).toMatchObject({
      subject: TEST_ACCOUNT,
    });

    // No token, a wrong token, another site: 403 problem+json, and the handler never runs.
    const without = await app.request('POST', '/api/things', { name: 'a' }, { cookie });
    expect(without.status).toBe(403);
    expect(without.headers['content-type']).toContain('application/problem+json');
    expect(without.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_CSRF' });
    const wrong = await app.request('POST', '/api/things', { name: 'a' }, { cookie, 'x-csrf-token': `${csrf}x` });
    expect(wrong.status).toBe(403);
    const crossSite = await app.request(
      'POST',
      '/api/things',
      { name: 'a' },
      { cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
    );
    expect(crossSite.status).toBe(403);
    const ok = await app.request(
      'POST',
      '/api/things',
      { name: 'a' },
      { cookie, 'x-csrf-token': csrf, origin: ORIGIN },
    );
    expect(ok).toMatchObject({ status: 201, body: { subject: TEST_ACCOUNT, method: 'session' } });

    // The log names the subject, never the cookie.
    const lines = app.logs.lines.map((line) => JSON.stringify(line));
    expect(lines.some((line) => line.includes('"subject":"alice"'))).toBe(true);
    expect(lines.some((line) => line.includes(session))).toBe(false);

    // Logout needs the token too, then clears both cookies.
    expect((await app.request('POST', '/auth/logout', undefined, { cookie })).status).toBe(403);
    const out = await app.request('POST', '/auth/logout', undefined, { cookie, 'x-csrf-token': csrf });
    expect(out.status).toBe(204);
    const cleared = setCookies(out.headers);
    expect(cleared.get('gantry_session')).toContain('Max-Age=0');
    expect(cleared.get('gantry_session_csrf')).toContain('Max-Age=0');
  });

  it('never sends the browser to another site after login', async () => {
    const started = await app.request('GET', '/auth/login?returnTo=%2F%2Fevil.example%2F');
    const cookie = cookieValue(setCookies(started.headers).get('gantry_session_login'));
    const opened = await sealer.openLogin(cookie);
    expect(opened?.returnTo).toBe('/app/');
  });
});
