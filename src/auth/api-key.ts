import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GantryError } from '../errors/gantry-error.ts';
import { challenge, unauthenticated } from './challenge.ts';
import type { AuthIdentity } from './identity.ts';

const PREFIX = 'sha256:';
const DIGEST_BYTES = 32;

/** One accepted API key as configured: its hash, never the key itself. */
export interface ApiKeyRecord {
  /** A name for the key, for rotation and audit (`ci-deploy-2026`); never secret. */
  id: string;
  /** `sha256:<base64url>` of the key, from {@link hashApiKey}. */
  hash: string;
  /** The subject callers with this key act as; the id when omitted. */
  subject?: string;
  scopes?: readonly string[];
  roles?: readonly string[];
}

/**
 * The hash of an API key as the config stores it. A fast hash is right here: keys are long random strings (see
 * {@link generateApiKey}), so there is nothing to guess that a slow hash would protect.
 *
 * @example
 * hashApiKey('gk_3m9...') // 'sha256:q1Xh...'
 */
export function hashApiKey(key: string): string {
  return `${PREFIX}${createHash('sha256').update(key, 'utf8').digest('base64url')}`;
}

/**
 * A new random API key (32 bytes, base64url, prefixed `gk_` so scanners can spot a leaked one) and its hash.
 *
 * @example
 * const { key, hash } = generateApiKey(); // give `key` to the client, put `hash` in GANTRY_API_KEYS
 */
export function generateApiKey(): { key: string; hash: string } {
  const key = `gk_${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key) };
}

/** Checks presented API keys against configured hashes, in constant time. */
export class ApiKeyVerifier {
  private readonly records: { record: ApiKeyRecord; digest: Buffer }[];

  private readonly header: string;

  /** @throws GantryError `GANTRY_ERR_AUTH_MISCONFIGURED` for a hash that is not `sha256:<base64url>` or a repeated id. */
  constructor(records: readonly ApiKeyRecord[], header: string) {
    this.header = header;
    const ids = new Set<string>();
    this.records = records.map((record) => {
      const digest = record.hash.startsWith(PREFIX) ? Buffer.from(record.hash.slice(PREFIX.length), 'base64url') : null;
      if (digest === null || digest.length !== DIGEST_BYTES) {
        throw new GantryError(
          'GANTRY_ERR_AUTH_MISCONFIGURED',
          `API key '${record.id}': the hash must be 'sha256:<base64url>' as hashApiKey() makes it`,
        );
      }
      if (ids.has(record.id))
        throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', `API key id '${record.id}' is used twice`);
      ids.add(record.id);
      return { record, digest };
    });
  }

  /**
   * Returns who a key belongs to.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_UNAUTHENTICATED` when no configured key matches.
   */
  verify(presented: string): AuthIdentity {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKeyRecord | undefined;
    // Compare with every record, never stopping early, so the time taken says nothing about which key came close.
    for (const { record, digest: expected } of this.records) {
      if (timingSafeEqual(digest, expected) && found === undefined) found = record;
    }
    if (!found) {
      throw unauthenticated('the API key is not valid', [
        challenge('ApiKey', { header: this.header, error: 'invalid_key' }),
      ]);
    }
    return {
      subject: found.subject ?? found.id,
      method: 'apiKey',
      scopes: found.scopes ?? [],
      roles: found.roles ?? [],
      claims: { keyId: found.id },
    };
  }
}
