import { hkdfSync, randomBytes } from 'node:crypto';
import { EncryptJWT, jwtDecrypt } from 'jose';

/** What a session cookie holds once opened: who logged in, their roles, and the CSRF token of the session. */
export interface SessionData {
  /** The ID token's `sub`. */
  readonly subject: string;
  /** The ID token's `iss`. */
  readonly issuer: string;
  /** The roles the ID token's roles claim gave at login (fixed for the session's life). */
  readonly roles: readonly string[];
  /** The token state-changing requests must echo in `x-csrf-token`. */
  readonly csrf: string;
  /** When the session ends, in seconds since the epoch. */
  readonly expiresAt: number;
}

/** What the short-lived login cookie carries from the redirect to the provider to the callback. */
export interface LoginTransaction {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  /** A path of this site to land on after login. */
  readonly returnTo: string;
}

/**
 * Seals and opens the two cookies of browser login as encrypted JWTs (JWE `dir` + `A256GCM`, by `jose`).
 *
 * Why encrypted cookies rather than a server-side store: the session is a few claims, every instance behind a load
 * balancer can open it with the shared key and no store has to be run or shared; encryption (not only a signature)
 * keeps the CSRF token and the PKCE verifier unreadable by anything that sees the cookie. The price is that a session
 * cannot be revoked before it expires, which is why its lifetime is bounded and not renewed.
 */
export class SessionSealer {
  private readonly sessionKey: Uint8Array;
  private readonly loginKey: Uint8Array;

  /** @param secret The shared secret; each cookie kind gets its own key derived from it (HKDF-SHA256). */
  constructor(secret: string) {
    this.sessionKey = derive(secret, 'gantry oidc session');
    this.loginKey = derive(secret, 'gantry oidc login');
  }

  /** Seals a session for `maxAgeSeconds`. */
  sealSession(data: Omit<SessionData, 'expiresAt'>, maxAgeSeconds: number): Promise<string> {
    return new EncryptJWT({ csrf: data.csrf, roles: [...data.roles] })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setSubject(data.subject)
      .setIssuer(data.issuer)
      .setIssuedAt()
      .setExpirationTime(`${maxAgeSeconds}s`)
      .encrypt(this.sessionKey);
  }

  /** Opens a session cookie; undefined when it is missing, tampered with, sealed with another key or expired. */
  async openSession(value: string | undefined): Promise<SessionData | undefined> {
    const payload = await open(value, this.sessionKey);
    if (!payload) return undefined;
    const { sub, iss, csrf, exp, roles } = payload;
    if (typeof sub !== 'string' || typeof iss !== 'string' || typeof csrf !== 'string' || typeof exp !== 'number') {
      return undefined;
    }
    // Sessions sealed before roles were kept carry none.
    const held = Array.isArray(roles) ? roles.filter((role): role is string => typeof role === 'string') : [];
    return { subject: sub, issuer: iss, roles: held, csrf, expiresAt: exp };
  }

  /** Seals a login transaction for `maxAgeSeconds`. */
  sealLogin(transaction: LoginTransaction, maxAgeSeconds: number): Promise<string> {
    return new EncryptJWT({ ...transaction })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt()
      .setExpirationTime(`${maxAgeSeconds}s`)
      .encrypt(this.loginKey);
  }

  /** Opens a login cookie; undefined when it is missing, tampered with or expired. */
  async openLogin(value: string | undefined): Promise<LoginTransaction | undefined> {
    const payload = await open(value, this.loginKey);
    if (!payload) return undefined;
    const { state, nonce, codeVerifier, returnTo } = payload;
    if (
      typeof state !== 'string' ||
      typeof nonce !== 'string' ||
      typeof codeVerifier !== 'string' ||
      typeof returnTo !== 'string'
    ) {
      return undefined;
    }
    return { state, nonce, codeVerifier, returnTo };
  }
}

/** A random secret for a process that was given none (dev and test only): its sessions end when it stops. */
export function ephemeralSecret(): string {
  return randomBytes(32).toString('base64url');
}

function derive(secret: string, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, 'gantry', info, 32));
}

async function open(value: string | undefined, key: Uint8Array): Promise<Record<string, unknown> | undefined> {
  if (!value || value.length > 4096) return undefined;
  try {
    const { payload } = await jwtDecrypt(value, key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    return payload as Record<string, unknown>;
  } catch {
    // Tampered, foreign, expired or garbage: all mean "no session".
    return undefined;
  }
}
