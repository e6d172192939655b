import { randomUUID } from 'node:crypto';
import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { GantryError } from '../errors/gantry-error.ts';
import { challenge, unauthenticated } from './challenge.ts';
import type { AuthIdentity } from './identity.ts';

/** The header a service-to-service call carries its token in. */
export const SERVICE_TOKEN_HEADER = 'x-gantry-service-token';
/** The `iss` of every service token. */
export const SERVICE_TOKEN_ISSUER = 'gantry';
/** The JOSE `typ` of service tokens: keeps them apart from users' bearer tokens signed by anyone else. */
export const SERVICE_TOKEN_TYPE = 'gantry-service+jwt';
/** The role every verified service caller holds. */
export const SERVICE_ROLE = 'service';

/** Options of {@link signServiceToken}. */
export interface ServiceTokenOptions {
  /** The shared secret (`GANTRY_SERVICE_SECRET`), at least 32 characters. */
  secret: string;
  /** The calling service: the token's subject. */
  caller: string;
  /** The called service: the token is good for it alone. */
  audience: string;
  /** Lifetime in seconds; default 60. */
  ttlSeconds?: number;
  /** Scopes granted to the call. */
  scopes?: readonly string[];
}

/**
 * Signs a short-lived service-to-service token (HS256 over the shared secret), bound to one called service.
 *
 * @example
 * const token = await signServiceToken({ secret, caller: 'orders', audience: 'billing' });
 * // send it as `X-Gantry-Service-Token: <token>`
 */
export async function signServiceToken(options: ServiceTokenOptions): Promise<string> {
  const ttl = options.ttlSeconds ?? 60;
  const jwt = new SignJWT(options.scopes?.length ? { scope: options.scopes.join(' ') } : {})
    .setProtectedHeader({ alg: 'HS256', typ: SERVICE_TOKEN_TYPE })
    .setIssuer(SERVICE_TOKEN_ISSUER)
    .setSubject(options.caller)
    .setAudience(options.audience)
    .setIssuedAt()
    .setExpirationTime(`${ttl}s`)
    .setJti(randomUUID());
  return jwt.sign(new TextEncoder().encode(options.secret));
}

/** Options of {@link ServiceTokenVerifier}. */
export interface ServiceTokenVerifierOptions {
  /** The current secret, then older ones still accepted during a rotation. */
  secrets: readonly string[];
  /** Longest accepted lifetime (`exp` − `iat`), in seconds. */
  maxAgeSeconds: number;
  clockSkewSeconds: number;
}

/** Verifies service-to-service tokens made by {@link signServiceToken}. */
export class ServiceTokenVerifier {
  private readonly keys: Uint8Array[];

  private readonly options: ServiceTokenVerifierOptions;

  /** @throws GantryError `GANTRY_ERR_AUTH_MISCONFIGURED` without a secret of at least 32 characters. */
  constructor(options: ServiceTokenVerifierOptions) {
    this.options = options;
    if (options.secrets.length === 0 || options.secrets.some((secret) => secret.length < 32)) {
      throw new GantryError(
        'GANTRY_ERR_AUTH_MISCONFIGURED',
        'service auth needs GANTRY_SERVICE_SECRET of at least 32 characters',
      );
    }
    this.keys = options.secrets.map((secret) => new TextEncoder().encode(secret));
  }

  /**
   * Returns the calling service named by a token meant for one of `audiences`.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_UNAUTHENTICATED` for a token that is expired, lives too long, is for another
   * service or does not verify under any accepted secret.
   */
  async verify(token: string, audiences: readonly string[]): Promise<AuthIdentity> {
    let last: unknown;
    for (const key of this.keys) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          issuer: SERVICE_TOKEN_ISSUER,
          audience: [...audiences],
          algorithms: ['HS256'],
          typ: SERVICE_TOKEN_TYPE,
          clockTolerance: this.options.clockSkewSeconds,
          requiredClaims: ['exp', 'iat', 'sub'],
        }));
      } catch (error) {
        last = error;
        // Only a signature mismatch may mean "signed with the other secret"; anything else is final.
        if (!(error instanceof errors.JWSSignatureVerificationFailed)) break;
        continue;
      }
      return this.identity(payload);
    }
    const reason = last instanceof errors.JWTExpired ? 'the token has expired' : 'the token is not valid';
    throw unauthenticated(`the service token is not valid: ${reason}`, [
      challenge('GantryService', { error: 'invalid_token', error_description: reason }),
    ]);
  }

  private identity(payload: JWTPayload): AuthIdentity {
    const lifetime = (payload.exp ?? 0) - (payload.iat ?? 0);
    if (lifetime > this.options.maxAgeSeconds) {
      const reason = `the token lives ${lifetime} s, longer than the ${this.options.maxAgeSeconds} s allowed`;
      throw unauthenticated(`the service token is not valid: ${reason}`, [
        challenge('GantryService', { error: 'invalid_token', error_description: reason }),
      ]);
    }
    const scope = (payload as { scope?: unknown }).scope;
    return {
      subject: payload.sub as string,
      method: 'service',
      scopes: typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : [],
      roles: [SERVICE_ROLE],
      claims: payload as Record<string, unknown>,
    };
  }
}
