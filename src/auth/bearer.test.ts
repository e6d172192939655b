import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GantryError } from '../errors/gantry-error.ts';
import { JwtVerifier } from './bearer.ts';
import { challengesOf } from './challenge.ts';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'orders-api';

async function sign(
  key: KeyPair['privateKey'],
  options: {
    kid?: string;
    alg?: string;
    iss?: string;
    aud?: string;
    exp?: number | string;
    sub?: string;
    claims?: object;
  } = {},
): Promise<string> {
  const jwt = new SignJWT({ scope: 'orders:read orders:write', roles: ['clerk'], ...options.claims })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setSubject(options.sub ?? 'user-42')
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m');
  return jwt.sign(key);
}

async function rejection(promise: Promise<unknown>): Promise<GantryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GantryError);
  return error as GantryError;
}

describe('bearer JWTs against a JWKS served over HTTP', () => {
  let server: Server;
  let jwksUrl: string;
  let fetches = 0;
  const published: JWK[] = [];
  let first: KeyPair;
  let second: KeyPair;
  let verifier: JwtVerifier;

  beforeAll(async () => {
    first = await generateKeyPair('RS256');
    second = await generateKeyPair('ES256');
    published.push({ ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' });
    server = createServer((request, response) => {
      fetches++;
      if (request.url !== '/jwks') return response.writeHead(404).end();
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    verifier = new JwtVerifier({
      jwksUrl,
      issuer: ISSUER,
      audience: [AUDIENCE],
      algorithms: ['RS256', 'ES256'],
      clockSkewSeconds: 5,
      jwksCooldownSeconds: 0,
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('accepts a valid token and reads subject, scopes, roles and claims', async () => {
    const identity = await verifier.verify(await sign(first.privateKey, { kid: 'k1' }));
    expect(identity).toMatchObject({
      subject: 'user-42',
      method: 'bearer',
      scopes: ['orders:read', 'orders:write'],
      roles: ['clerk'],
    });
    expect(identity.claims.iss).toBe(ISSUER);
  });

  it('caches the keys, and fetches again when a token names a key it has not seen (rotation)', async () => {
    await verifier.verify(await sign(first.privateKey, { kid: 'k1' }));
    const before = fetches;
    await verifier.verify(await sign(first.privateKey, { kid: 'k1' }));
    expect(fetches).toBe(before);
    const rotated = await sign(second.privateKey, { kid: 'k2', alg: 'ES256' });
    const unknown = await rejection(verifier.verify(rotated));
    expect(unknown.code).toBe('GANTRY_ERR_AUTH_UNAUTHENTICATED');
    expect(unknown.message).toContain('no key matches');
    published.push({ ...(await exportJWK(second.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' });
    published.shift();
    expect((await verifier.verify(rotated)).subject).toBe('user-42');
    expect(fetches).toBeGreaterThan(before + 1);
    // The retired key is gone from the set: its tokens no longer pass.
    const retired = await rejection(verifier.verify(await sign(first.privateKey, { kid: 'k1' })));
    expect(retired.code).toBe('GANTRY_ERR_AUTH_UNAUTHENTICATED');
    published.unshift({ ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' });
  });

  it.each([
    ['expired', { exp: Math.floor(Date.now() / 1000) - 60 }, 'the token has expired'],
    ['for another audience', { aud: 'billing-api' }, 'unexpected audience'],
    ['from another issuer', { iss: 'https://evil.example.test/' }, 'unexpected issuer'],
  ])('refuses a token %s with a 401 and an invalid_token challenge', async (_what, options, reason) => {
    const error = await rejection(verifier.verify(await sign(first.privateKey, { kid: 'k1', ...options })));
    expect(error.status).toBe(401);
    expect(error.message).toContain(reason);
    expect(challengesOf(error)[0]).toBe(`Bearer realm="gantry", error="invalid_token", error_description="${reason}"`);
  });

  it('tolerates expiry within the clock skew, and no further', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await verifier.verify(await sign(first.privateKey, { kid: 'k1', exp: now - 2 }))).subject).toBe('user-42');
    await rejection(verifier.verify(await sign(first.privateKey, { kid: 'k1', exp: now - 10 })));
  });

  it('refuses a bad signature, a tampered payload and an unsigned token', async () => {
    const stranger = await generateKeyPair('RS256');
    const forged = await rejection(verifier.verify(await sign(stranger.privateKey, { kid: 'k1' })));
    expect(forged.message).toContain('the signature does not verify');
    const [header, , signature] = (await sign(first.privateKey, { kid: 'k1' })).split('.');
    const payload = Buffer.from(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: 9e9 })).toString(
      'base64url',
    );
    expect((await rejection(verifier.verify(`${header}.${payload}.${signature}`))).status).toBe(401);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect((await rejection(verifier.verify(none))).status).toBe(401);
  });

  it('refuses HS256 tokens unless HS256 was asked for', async () => {
    const secret = new TextEncoder().encode('x'.repeat(32));
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('u')
      .setExpirationTime('1m')
      .sign(secret);
    expect((await rejection(verifier.verify(token))).message).toContain('algorithm is not accepted');
    const hs = new JwtVerifier({
      secret: 'x'.repeat(32),
      issuer: ISSUER,
      audience: [AUDIENCE],
      algorithms: ['HS256'],
      clockSkewSeconds: 0,
    });
    expect((await hs.verify(token)).subject).toBe('u');
  });

  it('answers 503 when the JWKS cannot be fetched', async () => {
    const down = new JwtVerifier({
      jwksUrl: `${jwksUrl.replace('/jwks', '/missing')}`,
      issuer: ISSUER,
      audience: [AUDIENCE],
      algorithms: ['RS256'],
      clockSkewSeconds: 0,
    });
    const error = await rejection(down.verify(await sign(first.privateKey, { kid: 'k1' })));
    expect(error.code).toBe('GANTRY_ERR_AUTH_KEYS_UNAVAILABLE');
    expect(error.status).toBe(503);
  });
});

describe('bearer JWTs against local keys', () => {
  it('verifies with PEM public keys, each pinned to its kind of key', async () => {
    const rsa = await generateKeyPair('RS256');
    const ed = await generateKeyPair('EdDSA');
    const verifier = new JwtVerifier({
      publicKeys: `${await exportSPKI(rsa.publicKey)}\n${await exportSPKI(ed.publicKey)}`,
      issuer: ISSUER,
      audience: [AUDIENCE],
      algorithms: ['RS256', 'EdDSA'],
      clockSkewSeconds: 0,
    });
    expect((await verifier.verify(await sign(rsa.privateKey))).subject).toBe('user-42');
    expect((await verifier.verify(await sign(ed.privateKey, { alg: 'EdDSA', sub: 'ed' }))).subject).toBe('ed');
    const other = await generateKeyPair('EdDSA');
    expect((await rejection(verifier.verify(await sign(other.privateKey, { alg: 'EdDSA' })))).status).toBe(401);
  });

  it('refuses settings that could not verify safely', () => {
    const base = { issuer: ISSUER, audience: [AUDIENCE], clockSkewSeconds: 0 };
    const cases: [Partial<ConstructorParameters<typeof JwtVerifier>[0]>, string][] = [
      [{ jwksUrl: 'http://idp.example.test/jwks', algorithms: ['RS256'] }, 'must use https'],
      [{ algorithms: ['RS256'] }, 'no JWKS URL or public keys'],
      [{ secret: 'x'.repeat(32), algorithms: ['RS256'], publicKeys: '{"keys":[]}' }, 'HS256 is not listed'],
      [{ algorithms: ['HS256'] }, 'no secret is set'],
      [{ algorithms: ['none'], publicKeys: '{"keys":[]}' }, 'unsupported algorithm'],
      [{ issuer: '', algorithms: ['RS256'], publicKeys: '{"keys":[]}' }, 'issuer'],
    ];
    for (const [options, message] of cases) {
      expect(() => new JwtVerifier({ ...base, algorithms: [], ...options } as never), message).toThrow(message);
    }
  });
});
