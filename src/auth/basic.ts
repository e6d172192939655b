import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { GantryError } from '../errors/gantry-error.ts';
import { challenge, unauthenticated } from './challenge.ts';
import type { AuthIdentity } from './identity.ts';

/** One basic-auth user as configured: a scrypt hash of the password, never the password. */
export interface BasicUserRecord {
  username: string;
  /** `$scrypt$n=…,r=…,p=…$<salt>$<hash>` from {@link hashPassword}. */
  hash: string;
  scopes?: readonly string[];
  roles?: readonly string[];
}

/** The scrypt cost of new hashes: N = 2^15, r = 8, p = 1 (about 32 MiB and tens of ms per check). */
export const SCRYPT_DEFAULTS = { n: 32_768, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const PHC = /^\$scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

interface ParsedHash {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/**
 * Hashes a password with scrypt (node:crypto) and a random salt, in the PHC string format.
 *
 * @example
 * await hashPassword('correct horse battery staple') // '$scrypt$n=32768,r=8,p=1$…$…'
 */
export async function hashPassword(
  password: string,
  cost: { n?: number; r?: number; p?: number } = {},
): Promise<string> {
  const n = cost.n ?? SCRYPT_DEFAULTS.n;
  const r = cost.r ?? SCRYPT_DEFAULTS.r;
  const p = cost.p ?? SCRYPT_DEFAULTS.p;
  const salt = randomBytes(16);
  const key = await derive(password, salt, { n, r, p });
  return `$scrypt$n=${n},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches a hash made by {@link hashPassword}; compares in constant time. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed, parsed.key.length);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** Checks `Authorization: Basic` credentials against configured users. */
export class BasicVerifier {
  private readonly users = new Map<string, BasicUserRecord>();
  /** Checked when the user does not exist, so that an unknown name takes as long as a wrong password. */
  private readonly decoy: Promise<string>;

  /** @throws GantryError `GANTRY_ERR_AUTH_MISCONFIGURED` for a hash that is not a scrypt PHC string or a repeated name. */
  constructor(users: readonly BasicUserRecord[]) {
    for (const user of users) {
      const parsed = parseHash(user.hash);
      if (!parsed) {
        throw new GantryError(
          'GANTRY_ERR_AUTH_MISCONFIGURED',
          `basic user '${user.username}': the hash must be a scrypt PHC string as hashPassword() makes it`,
        );
      }
      if (this.users.has(user.username)) {
        throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', `basic user '${user.username}' is listed twice`);
      }
      this.users.set(user.username, user);
    }
    const first = users[0] ? parseHash(users[0].hash) : null;
    this.decoy = hashPassword(randomBytes(16).toString('hex'), first ?? {});
    this.decoy.catch(() => undefined);
  }

  /**
   * Returns the user named by the `user:password` pair encoded in a Basic credential.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_UNAUTHENTICATED` when the pair is malformed, the user unknown or the
   * password wrong; the answer does not say which.
   */
  async verify(encoded: string): Promise<AuthIdentity> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const username = colon < 0 ? '' : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    const user = this.users.get(username);
    const ok = await verifyPassword(password, user?.hash ?? (await this.decoy));
    if (!user || !ok) {
      throw unauthenticated('the user name or password is not valid', [challenge('Basic', { charset: 'UTF-8' })]);
    }
    return {
      subject: user.username,
      method: 'basic',
      scopes: user.scopes ?? [],
      roles: user.roles ?? [],
      claims: { username: user.username },
    };
  }
}

function parseHash(hash: string): ParsedHash | null {
  const match = PHC.exec(hash);
  if (!match) return null;
  const [n, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Refuse costs that are not powers of two or that would make one check take seconds and gigabytes.
  if (n < 2 || n > 2 ** 20 || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return null;
  return { n, r, p, salt: Buffer.from(match[4] as string, 'base64'), key: Buffer.from(match[5] as string, 'base64') };
}

function derive(
  password: string,
  salt: Buffer,
  cost: { n: number; r: number; p: number },
  length = KEY_BYTES,
): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.n, r: cost.r, p: cost.p, maxmem: 256 * cost.n * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}
