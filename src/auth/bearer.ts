import { createPublicKey } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { GantryError } from '../errors/gantry-error.ts';
import { challenge, unauthenticated } from './challenge.ts';
import type { AuthIdentity } from './identity.ts';

/** The asymmetric algorithms accepted by default; HS256 is accepted only when listed explicitly. */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

const SUPPORTED = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA', 'HS256']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Options of {@link JwtVerifier}. */
export interface JwtVerifierOptions {
  /** A JWKS URL: keys are fetched on first use, cached for `jwksCacheSeconds`, refetched for an unknown `kid`. */
  jwksUrl?: string;
  /** Keys held locally: a JWKS document (JSON) or one or more PEM public keys. */
  publicKeys?: string;
  /** The HS256 shared secret (only with `HS256` in `algorithms`). */
  secret?: string;
  issuer: string;
  /** Accepted audiences: a token must name at least one. */
  audience: readonly string[];
  algorithms: readonly string[];
  /** Tolerance for `exp` and `nbf`, in seconds (at most 300). */
  clockSkewSeconds: number;
  /** Claim of the scopes (a space-separated string or an array); `scp` is read when it is absent. */
  scopesClaim?: string;
  /** Claim of the roles, a dotted path for nested claims. */
  rolesClaim?: string;
  /** How long fetched keys are trusted, in seconds; default 600. */
  jwksCacheSeconds?: number;
  /** Least time between two fetches of the JWKS, in seconds: bounds what unknown `kid`s can cost; default 30. */
  jwksCooldownSeconds?: number;
  /** Abort a JWKS fetch after this many ms; default 5000. */
  jwksTimeoutMs?: number;
}

/**
 * Verifies bearer JWTs with `jose`: signature against the configured keys (a JWKS URL, local keys, or an HS256 secret
 * when asked for), then issuer, audience, expiry and not-before with a bounded clock skew, and a subject.
 */
export class JwtVerifier {
  private readonly getKey: JWTVerifyGetKey;
  private readonly options: JwtVerifierOptions;

  /** @throws GantryError `GANTRY_ERR_AUTH_MISCONFIGURED` when the options cannot verify anything safely. */
  constructor(options: JwtVerifierOptions) {
    this.options = options;
    const problems = jwtProblems(options);
    if (problems.length > 0) {
      throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', `bearer auth: ${problems.join('; ')}`, {
        details: problems,
      });
    }
    const asymmetric = options.jwksUrl
      ? createRemoteJWKSet(new URL(options.jwksUrl), {
          cacheMaxAge: (options.jwksCacheSeconds ?? 600) * 1000,
          cooldownDuration: (options.jwksCooldownSeconds ?? 30) * 1000,
          timeoutDuration: options.jwksTimeoutMs ?? 5000,
        })
      : options.publicKeys
        ? createLocalJWKSet(parsePublicKeys(options.publicKeys))
        : undefined;
    const secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
    this.getKey = async (header, token) => {
      if (header.alg?.startsWith('HS')) {
        if (!secret) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
        return secret;
      }
      if (!asymmetric) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
      return asymmetric(header, token);
    };
  }

  /**
   * Verifies a compact JWT and returns who it names.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_UNAUTHENTICATED` (with an RFC 6750 `invalid_token` challenge) for any token
   * that is not valid; `GANTRY_ERR_AUTH_KEYS_UNAVAILABLE` when the JWKS cannot be fetched.
   */
  async verify(token: string): Promise<AuthIdentity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, {
        issuer: this.options.issuer,
        audience: [...this.options.audience],
        algorithms: [...this.options.algorithms],
        clockTolerance: this.options.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw this.toAuthError(error);
    }
    const claims = payload as Record<string, unknown>;
    return {
      subject: payload.sub as string,
      method: 'bearer',
      scopes: scopesOf(claims, this.options.scopesClaim ?? 'scope'),
      roles: stringsAt(claims, this.options.rolesClaim ?? 'roles'),
      claims,
    };
  }

  private toAuthError(error: unknown): GantryError {
    if (error instanceof errors.JWKSTimeout || isFetchFailure(error)) {
      return new GantryError('GANTRY_ERR_AUTH_KEYS_UNAVAILABLE', 'the keys to verify the token could not be fetched', {
        cause: error,
      });
    }
    const reason = reasonOf(error);
    return unauthenticated(`the bearer token is not valid: ${reason}`, [
      challenge('Bearer', { error: 'invalid_token', error_description: reason }),
    ]);
  }
}

/** What is wrong with a set of bearer options; empty when they are usable. */
function jwtProblems(options: JwtVerifierOptions): string[] {
  const problems: string[] = [];
  if (!options.issuer) problems.push('set the issuer every token must carry (GANTRY_JWT_ISSUER)');
  if (options.audience.length === 0) problems.push('set the audience every token must carry (GANTRY_JWT_AUDIENCE)');
  if (options.jwksUrl && options.publicKeys) problems.push('set either a JWKS URL or public keys, not both');
  const unknown = options.algorithms.filter((alg) => !SUPPORTED.has(alg));
  if (unknown.length > 0)
    problems.push(`unsupported algorithm(s) ${unknown.join(', ')}; use ${[...SUPPORTED].join(', ')}`);
  const hs = options.algorithms.includes('HS256');
  if (hs && !options.secret) problems.push('HS256 is listed but no secret is set (GANTRY_JWT_SECRET)');
  if (!hs && options.secret) problems.push('a secret is set but HS256 is not listed in the algorithms');
  const asymmetric = options.algorithms.some((alg) => alg !== 'HS256');
  if (asymmetric && !options.jwksUrl && !options.publicKeys) {
    problems.push('asymmetric algorithms are listed but there is no JWKS URL or public keys to verify them');
  }
  if (options.jwksUrl) {
    let url: URL | undefined;
    try {
      url = new URL(options.jwksUrl);
    } catch {
      problems.push('the JWKS URL is not a URL');
    }
    // Keys fetched in clear could be swapped on the way: only a loopback JWKS (tests, sidecars) may use http.
    if (url && url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      problems.push('the JWKS URL must use https');
    }
  }
  return problems;
}

/** A JWKS document, or PEM public keys (SPKI or certificates' keys) turned into one. */
function parsePublicKeys(text: string): JSONWebKeySet {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const parsed = JSON.parse(trimmed) as Partial<JSONWebKeySet>;
    if (!Array.isArray(parsed.keys)) {
      throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', 'bearer auth: the public keys JSON has no "keys" array');
    }
    return parsed as JSONWebKeySet;
  }
  const blocks = trimmed.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
  if (blocks.length === 0) {
    throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', 'bearer auth: the public keys are neither a JWKS nor PEM');
  }
  return { keys: blocks.map((pem) => pemToJwk(pem)) };
}

function pemToJwk(pem: string): JWK {
  const key = createPublicKey(pem);
  const jwk = key.export({ format: 'jwk' }) as JWK;
  // Pin each key to one algorithm family, so a key can never verify a token signed for another kind of key.
  if (key.asymmetricKeyType === 'ec') jwk.alg = { 'P-256': 'ES256', 'P-384': 'ES384' }[jwk.crv ?? ''] ?? 'ES256';
  if (key.asymmetricKeyType === 'ed25519') jwk.alg = 'EdDSA';
  return jwk;
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return 'unexpected issuer';
      case 'aud':
        return 'unexpected audience';
      case 'nbf':
        return 'the token is not valid yet';
      default:
        return `the "${error.claim}" claim is missing or invalid`;
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key matches the token';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the signing algorithm is not accepted';
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return 'the token is malformed';
  return 'the token could not be verified';
}

/** True when the error came from fetching the JWKS rather than from the token. */
function isFetchFailure(error: unknown): boolean {
  if (error instanceof errors.JOSEError) return /JSON Web Key Set (HTTP )?response/i.test(error.message);
  return error instanceof TypeError && /fetch/i.test(error.message);
}

function scopesOf(claims: Record<string, unknown>, claim: string): string[] {
  const value = claims[claim] ?? (claim === 'scope' ? claims.scp : undefined);
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * The strings at a claim path (`roles`, or dotted for nested claims: `realm_access.roles`): an array's strings, or a
 * single string; none when the path leads elsewhere.
 */
export function stringsAt(claims: Readonly<Record<string, unknown>>, path: string): string[] {
  let node: unknown = claims;
  for (const key of path.split('.')) {
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  }
  if (typeof node === 'string') return [node];
  return Array.isArray(node) ? node.filter((item): item is string => typeof item === 'string') : [];
}
