import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Validator } from '@seriousme/openapi-schema-validator';
import { type AuthIdentity, type AuthInput, type HostPlugin, requireRole, service, t } from 'gantry';
import { generateApiKey, hashPassword, signServiceToken } from 'gantry/auth';
import { startTestHost, type TestHost } from 'gantry/testing';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'shop-api';
const SERVICE_SECRET = 'service-secret-for-tests-0123456789abcdef';
const Who = t.Object({ subject: t.String() });

const seen: (AuthIdentity | undefined)[] = [];
const whoAmI = async (_input: unknown, ctx: { auth?: AuthIdentity; log: { info: (msg: string) => void } }) => {
  seen.push(ctx.auth);
  ctx.log.info('handling');
  return { subject: ctx.auth?.subject ?? 'anonymous' };
};

const shop = service({ name: 'shop', version: '1.0.0' })
  .get('/orders', { auth: 'bearer', response: Who }, whoAmI)
  .post(
    '/orders',
    {
      auth: { methods: 'bearer', scopes: ['orders:write'] },
      body: t.Object({ item: t.String() }),
      response: { 201: Who },
    },
    whoAmI,
  )
  .get(
    '/customers/:owner/orders',
    {
      auth: {
        methods: ['bearer', 'apiKey'],
        allow: (who: AuthIdentity, input: AuthInput) => who.subject === input.params.owner,
      },
      params: t.Object({ owner: t.String() }),
      response: Who,
    },
    whoAmI,
  )
  .get('/admin/report', { auth: { methods: ['bearer', 'basic'], roles: ['admin', 'auditor'] }, response: Who }, whoAmI)
  .get('/basic', { auth: 'basic', response: Who }, whoAmI)
  .get('/open', { auth: 'public', response: Who }, whoAmI)
  .get('/maybe', { auth: ['public', 'bearer'], response: Who }, whoAmI)
  .get('/defaulted', { response: Who }, whoAmI)
  .get('/internal', { auth: 'service', response: Who }, whoAmI);

const adminPlugin: HostPlugin = {
  name: 'admin-probe',
  register: (api) =>
    api.routes((app) => app.get('/_gantry/probe', { onRequest: requireRole('ops') }, async () => ({ ok: true }))),
};

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

describe('auth in a host', () => {
  let app: TestHost;
  let jwks: Server;
  let key: KeyPair;
  let clerkKey: string;

  const token = (options: { sub?: string; scope?: string; roles?: string[]; aud?: string; exp?: number } = {}) =>
    new SignJWT({ scope: options.scope ?? 'orders:read', roles: options.roles ?? [] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(options.aud ?? AUDIENCE)
      .setSubject(options.sub ?? 'ada')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m')
      .sign(key.privateKey);
  const bearer = async (options?: Parameters<typeof token>[0]) => ({ authorization: `Bearer ${await token(options)}` });
  const basic = (pair: string) => ({ authorization: `Basic ${Buffer.from(pair).toString('base64')}` });

  beforeAll(async () => {
    key = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'RS256' };
    jwks = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const ops = generateApiKey();
    const clerk = generateApiKey();
    clerkKey = clerk.key;
    app = await startTestHost({
      services: [shop],
      plugins: [adminPlugin],
      config: {
        host: {
          auth: {
            default: 'apiKey',
            jwt: {
              jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
              issuer: ISSUER,
              audience: AUDIENCE,
              algorithms: 'RS256',
            },
            apiKeys: [
              { id: 'ops', hash: ops.hash, subject: 'ops-bot', roles: ['ops'] },
              { id: 'clerk', hash: clerk.hash, subject: 'bob' },
            ],
            basicUsers: [{ username: 'ada', hash: await hashPassword('lovelace', { n: 1024 }), roles: ['auditor'] }],
            serviceSecret: SERVICE_SECRET,
          },
        },
      },
    });
  });
  afterAll(async () => {
    await app?.stop();
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('lets a valid bearer token through, with the subject in ctx.auth and in every log line of the event', async () => {
    const credential = await bearer();
    const res = await app.request('GET', '/orders', undefined, { ...credential, 'x-request-id': 'auth-ok-1' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ subject: 'ada' });
    expect(seen.at(-1)).toMatchObject({ subject: 'ada', method: 'bearer', scopes: ['orders:read'] });
    const lines = app.logs.where('requestId', 'auth-ok-1');
    expect(lines.map((line) => line.msg)).toEqual(['START', 'handling', 'DONE']);
    for (const line of lines) expect(line.subject).toBe('ada');
    const logged = JSON.stringify(app.logs.lines);
    expect(logged).not.toContain(credential.authorization.slice(7));
    expect(logged).not.toContain('orders:read');
  });

  it.each([
    ['no credential', async () => ({}), undefined],
    ['an expired token', () => bearer({ exp: Math.floor(Date.now() / 1000) - 600 }), 'the token has expired'],
    ['a token for another audience', () => bearer({ aud: 'other-api' }), 'unexpected audience'],
    [
      'a token with a forged signature',
      async () => {
        const [head, body] = (await token()).split('.');
        const forged = await new SignJWT({})
          .setProtectedHeader({ alg: 'RS256' })
          .sign((await generateKeyPair('RS256')).privateKey);
        return { authorization: `Bearer ${head}.${body}.${forged.split('.')[2]}` };
      },
      'the signature does not verify',
    ],
    ['a token of another scheme', async () => basic('ada:lovelace'), undefined],
  ])('answers 401 problem+json with WWW-Authenticate to %s', async (_what, headers, reason) => {
    const res = await app.request('GET', '/orders', undefined, await headers());
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED', status: 401 });
    const challenge = res.headers['www-authenticate'] as string;
    expect(challenge).toMatch(/^Bearer realm="gantry"/);
    if (reason) expect(challenge).toContain(`error_description="${reason}"`);
  });

  it('answers 401 to a token from another issuer', async () => {
    const other = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('https://evil.example.test/')
      .setAudience(AUDIENCE)
      .setSubject('ada')
      .setExpirationTime('5m')
      .sign(key.privateKey);
    const res = await app.request('GET', '/orders', undefined, { authorization: `Bearer ${other}` });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('unexpected issuer');
  });

  it('answers 403 when a scope is missing, before the body is even validated', async () => {
    const reader = await bearer({ scope: 'orders:read' });
    const res = await app.request('POST', '/orders', { wrong: true }, reader);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_FORBIDDEN', detail: 'missing scope(s): orders:write' });
    const writer = await bearer({ scope: 'orders:read orders:write' });
    expect((await app.request('POST', '/orders', { item: 'tea' }, writer)).status).toBe(201);
    expect((await app.request('POST', '/orders', { wrong: true }, writer)).status).toBe(400);
  });

  it('runs a rule on the claims and the input: 403 when it refuses', async () => {
    expect((await app.request('GET', '/customers/ada/orders', undefined, await bearer())).status).toBe(200);
    const refused = await app.request('GET', '/customers/bob/orders', undefined, await bearer());
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'GANTRY_ERR_AUTH_FORBIDDEN' });
    // Another method of the same event: an API key whose subject owns the path.
    expect((await app.request('GET', '/customers/bob/orders', undefined, { 'x-api-key': clerkKey })).status).toBe(200);
  });

  it('requires one of the roles', async () => {
    expect((await app.request('GET', '/admin/report', undefined, await bearer())).status).toBe(403);
    expect((await app.request('GET', '/admin/report', undefined, await bearer({ roles: ['admin'] }))).status).toBe(200);
    expect((await app.request('GET', '/admin/report', undefined, basic('ada:lovelace'))).status).toBe(200);
  });

  it('checks API keys (the host default here) and basic auth, good and bad', async () => {
    const good = await app.request('GET', '/defaulted', undefined, { 'x-api-key': clerkKey });
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ subject: 'bob' });
    const bad = await app.request('GET', '/defaulted', undefined, { 'x-api-key': `${clerkKey}0` });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toContain('ApiKey realm="gantry", header="x-api-key"');
    expect((await app.request('GET', '/defaulted')).status).toBe(401);
    expect((await app.request('GET', '/basic', undefined, basic('ada:lovelace'))).body).toEqual({ subject: 'ada' });
    const wrong = await app.request('GET', '/basic', undefined, basic('ada:babbage'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Basic realm="gantry", charset="UTF-8"');
  });

  it('serves public events to anyone, and optional-auth ones anonymously or verified', async () => {
    expect((await app.request('GET', '/open')).body).toEqual({ subject: 'anonymous' });
    expect((await app.request('GET', '/maybe')).body).toEqual({ subject: 'anonymous' });
    expect((await app.request('GET', '/maybe', undefined, await bearer())).body).toEqual({ subject: 'ada' });
    expect((await app.request('GET', '/maybe', undefined, { authorization: 'Bearer nonsense' })).status).toBe(401);
  });

  it('accepts service tokens meant for the service, and no other', async () => {
    const good = await signServiceToken({ secret: SERVICE_SECRET, caller: 'billing', audience: 'shop' });
    const res = await app.request('GET', '/internal', undefined, { 'x-gantry-service-token': good });
    expect(res.body).toEqual({ subject: 'billing' });
    const elsewhere = await signServiceToken({ secret: SERVICE_SECRET, caller: 'billing', audience: 'shipping' });
    expect((await app.request('GET', '/internal', undefined, { 'x-gantry-service-token': elsewhere })).status).toBe(
      401,
    );
  });

  it('leaves admin routes open outside prod', async () => {
    expect((await app.request('GET', '/_gantry/probe')).status).toBe(200);
  });

  it('documents each operation security and the schemes, and the document still validates', async () => {
    const document = (await app.request('GET', '/openapi.json')).body as {
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, Record<string, { security: unknown; responses: Record<string, unknown> }>>;
    };
    const result = await new Validator().validate(document as never);
    expect(result.errors ?? []).toEqual([]);
    expect(document.components.securitySchemes).toEqual({
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      apiKeyAuth: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      basicAuth: { type: 'http', scheme: 'basic' },
      serviceAuth: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-gantry-service-token' }),
    });
    expect(document.paths['/orders']?.post?.security).toEqual([{ bearerAuth: ['orders:write'] }]);
    expect(document.paths['/orders']?.post?.responses).toHaveProperty('401');
    expect(document.paths['/orders']?.post?.responses).toHaveProperty('403');
    expect(document.paths['/customers/{owner}/orders']?.get?.security).toEqual([
      { bearerAuth: [] },
      { apiKeyAuth: [] },
    ]);
    expect(document.paths['/maybe']?.get?.security).toEqual([{ bearerAuth: [] }, {}]);
    expect(document.paths['/defaulted']?.get?.security).toEqual([{ apiKeyAuth: [] }]);
    expect(document.paths['/open']?.get?.security).toEqual([]);
    expect(document.paths['/open']?.get?.responses).not.toHaveProperty('401');
  });
});

describe('auth at start-up and on admin routes in prod', () => {
  const prodHost = { allowEmbedded: true };
  const loose = service({ name: 'loose', version: '1.0.0' })
    .get('/a', { response: Who }, whoAmI)
    .get('/b', { auth: 'public', response: Who }, whoAmI)
    .post('/c', { response: Who }, whoAmI);

  it('refuses to start in prod, listing every event that declares no auth', async () => {
    const error = await startTestHost({ env: 'prod', services: [loose], config: { host: prodHost } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'GANTRY_ERR_AUTH_UNDECLARED' });
    expect((error as Error).message).toContain('loose: GET /a, loose: POST /c');
    expect((error as Error).message).not.toContain('GET /b');
  });

  it('starts in prod once a host default covers them, and runs them public elsewhere (saying so)', async () => {
    const { key, hash } = generateApiKey();
    const prod = await startTestHost({
      env: 'prod',
      services: [loose],
      config: { host: { ...prodHost, auth: { default: 'apiKey', apiKeys: [{ id: 'k', hash }] } } },
    });
    try {
      expect((await prod.request('GET', '/a')).status).toBe(401);
      expect((await prod.request('GET', '/a', undefined, { 'x-api-key': key })).status).toBe(200);
      expect((await prod.request('GET', '/b')).status).toBe(200);
    } finally {
      await prod.stop();
    }
    const dev = await startTestHost({ services: [loose] });
    try {
      expect((await dev.request('GET', '/a')).status).toBe(200);
      const line = dev.logs.lines.find((l) => Array.isArray(l.events));
      expect(line?.events).toEqual(['loose: GET /a', 'loose: POST /c']);
    } finally {
      await dev.stop();
    }
  });

  it('refuses to start when an event uses a method the host has no settings for', async () => {
    const needsJwt = service({ name: 'needs-jwt', version: '1.0.0' }).get(
      '/x',
      { auth: 'bearer', response: Who },
      whoAmI,
    );
    const error = await startTestHost({ services: [needsJwt] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'GANTRY_ERR_AUTH_MISCONFIGURED' });
    expect((error as Error).message).toContain("events use 'bearer'");
  });

  it('refuses to start when an event requires scopes but names no method and the host has no default', async () => {
    const vague = service({ name: 'vague', version: '1.0.0' }).get(
      '/v',
      { auth: { scopes: ['read'] }, response: Who },
      whoAmI,
    );
    const error = await startTestHost({ services: [vague] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'GANTRY_ERR_AUTH_MISCONFIGURED' });
    expect((error as Error).message).toContain('vague: GET /v requires scopes, roles or a rule but names no method');
  });

  it('guards admin routes with requireRole in prod', async () => {
    const ops = generateApiKey();
    const clerk = generateApiKey();
    const prod = await startTestHost({
      env: 'prod',
      services: [service({ name: 'quiet', version: '1.0.0' }).get('/q', { auth: 'public', response: Who }, whoAmI)],
      plugins: [adminPlugin],
      config: {
        host: {
          ...prodHost,
          auth: {
            apiKeys: [
              { id: 'ops', hash: ops.hash, roles: ['ops'] },
              { id: 'clerk', hash: clerk.hash },
            ],
          },
        },
      },
    });
    try {
      const none = await prod.request('GET', '/_gantry/probe');
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toContain('ApiKey');
      expect((await prod.request('GET', '/_gantry/probe', undefined, { 'x-api-key': clerk.key })).status).toBe(403);
      expect((await prod.request('GET', '/_gantry/probe', undefined, { 'x-api-key': ops.key })).status).toBe(200);
    } finally {
      await prod.stop();
    }
  });
});
