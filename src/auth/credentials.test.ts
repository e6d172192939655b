import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors/gantry-error.ts';
import { ApiKeyVerifier, generateApiKey, hashApiKey } from './api-key.ts';
import { BasicVerifier, hashPassword, verifyPassword } from './basic.ts';
import { challengesOf } from './challenge.ts';
import { SERVICE_TOKEN_ISSUER, SERVICE_TOKEN_TYPE, ServiceTokenVerifier, signServiceToken } from './service-token.ts';

const FAST = { n: 1024, r: 8, p: 1 };

function caught(run: () => unknown): GantryError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GantryError);
    return error as GantryError;
  }
  throw new Error('expected a throw');
}

async function rejected(promise: Promise<unknown>): Promise<GantryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GantryError);
  return error as GantryError;
}

describe('API keys', () => {
  const { key, hash } = generateApiKey();
  const verifier = new ApiKeyVerifier(
    [
      { id: 'other', hash: hashApiKey('gk_other-key') },
      { id: 'ci', hash, subject: 'ci-bot', scopes: ['deploy'], roles: ['ops'] },
    ],
    'x-api-key',
  );

  it('accepts a configured key, known only by its hash', () => {
    expect(hash).toMatch(/^sha256:[\w-]{43}$/);
    expect(hash).not.toContain(key);
    expect(verifier.verify(key)).toEqual({
      subject: 'ci-bot',
      method: 'apiKey',
      scopes: ['deploy'],
      roles: ['ops'],
      claims: { keyId: 'ci' },
    });
  });

  it('refuses an unknown key with a 401 and a challenge naming the header', () => {
    const error = caught(() => verifier.verify(`${key}x`));
    expect(error.status).toBe(401);
    expect(challengesOf(error)).toEqual(['ApiKey realm="gantry", header="x-api-key", error="invalid_key"']);
  });

  it('refuses a configured hash in another format, and ids used twice', () => {
    expect(() => new ApiKeyVerifier([{ id: 'a', hash: 'plain-key' }], 'x-api-key')).toThrow(/sha256/);
    expect(
      () =>
        new ApiKeyVerifier(
          [
            { id: 'a', hash },
            { id: 'a', hash },
          ],
          'x-api-key',
        ),
    ).toThrow(/used twice/);
  });
});

describe('passwords and basic auth', () => {
  it('hashes with scrypt and a salt, and verifies only the right password', async () => {
    const hash = await hashPassword('s3cret pass', FAST);
    expect(hash).toMatch(/^\$scrypt\$n=1024,r=8,p=1\$/);
    expect(await hashPassword('s3cret pass', FAST)).not.toBe(hash);
    expect(await verifyPassword('s3cret pass', hash)).toBe(true);
    expect(await verifyPassword('s3cret pas', hash)).toBe(false);
    expect(await verifyPassword('s3cret pass', 'not a hash')).toBe(false);
    // A cost that would make each check take seconds is refused, not run.
    expect(await verifyPassword('x', hash.replace('n=1024', 'n=4194304'))).toBe(false);
  });

  it('accepts a user with the right password and refuses unknown users and wrong passwords alike', async () => {
    const verifier = new BasicVerifier([
      { username: 'ada', hash: await hashPassword('lovelace', FAST), roles: ['admin'] },
    ]);
    const basic = (pair: string) => Buffer.from(pair).toString('base64');
    expect(await verifier.verify(basic('ada:lovelace'))).toMatchObject({
      subject: 'ada',
      method: 'basic',
      roles: ['admin'],
    });
    const wrong = await rejected(verifier.verify(basic('ada:babbage')));
    const unknown = await rejected(verifier.verify(basic('bob:lovelace')));
    const malformed = await rejected(verifier.verify('%%%'));
    for (const error of [wrong, unknown, malformed]) {
      expect(error.status).toBe(401);
      expect(error.message).toBe('the user name or password is not valid');
    }
    expect(challengesOf(wrong)).toEqual(['Basic realm="gantry", charset="UTF-8"']);
  });
});

describe('service tokens', () => {
  const secret = 's'.repeat(40);
  const verifier = new ServiceTokenVerifier({ secrets: [secret], maxAgeSeconds: 300, clockSkewSeconds: 0 });

  it('carries the calling service for the called one', async () => {
    const token = await signServiceToken({ secret, caller: 'orders', audience: 'billing', scopes: ['invoices:write'] });
    expect(await verifier.verify(token, ['billing'])).toMatchObject({
      subject: 'orders',
      method: 'service',
      roles: ['service'],
      scopes: ['invoices:write'],
    });
  });

  it('refuses a token for another service, an expired one, a long-lived one and one signed with another secret', async () => {
    const forOther = await signServiceToken({ secret, caller: 'orders', audience: 'shipping' });
    expect((await rejected(verifier.verify(forOther, ['billing']))).status).toBe(401);
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: SERVICE_TOKEN_TYPE })
      .setIssuer(SERVICE_TOKEN_ISSUER)
      .setSubject('orders')
      .setAudience('billing')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(secret));
    expect((await rejected(verifier.verify(expired, ['billing']))).message).toContain('expired');
    const longLived = await signServiceToken({ secret, caller: 'orders', audience: 'billing', ttlSeconds: 3600 });
    expect((await rejected(verifier.verify(longLived, ['billing']))).message).toContain('longer than the 300 s');
    const foreign = await signServiceToken({ secret: 'f'.repeat(40), caller: 'orders', audience: 'billing' });
    expect((await rejected(verifier.verify(foreign, ['billing']))).status).toBe(401);
  });

  it('accepts the previous secret during a rotation', async () => {
    const rotated = new ServiceTokenVerifier({
      secrets: ['n'.repeat(40), secret],
      maxAgeSeconds: 300,
      clockSkewSeconds: 0,
    });
    const old = await signServiceToken({ secret, caller: 'orders', audience: 'billing' });
    expect((await rotated.verify(old, ['billing'])).subject).toBe('orders');
  });

  it('refuses a user bearer token signed with the same secret but not typed as a service token', async () => {
    const userToken = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(SERVICE_TOKEN_ISSUER)
      .setSubject('orders')
      .setAudience('billing')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(secret));
    expect((await rejected(verifier.verify(userToken, ['billing']))).status).toBe(401);
  });

  it('needs a secret of at least 32 characters', () => {
    expect(() => new ServiceTokenVerifier({ secrets: ['short'], maxAgeSeconds: 60, clockSkewSeconds: 0 })).toThrow(
      /32 characters/,
    );
  });
});
