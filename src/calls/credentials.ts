import { SERVICE_TOKEN_HEADER, signServiceToken } from '../auth/service-token.ts';

/** Lifetime of the tokens this process signs, in seconds; they are reused until 15 s before they expire. */
const TOKEN_TTL_SECONDS = 60;

/**
 * The credential a call carries to another service: the short-lived token the receiving host's `service` auth
 * verifies (`X-Gantry-Service-Token`, HS256 over the shared `GANTRY_SERVICE_SECRET`, subject the caller, audience
 * the callee). Tokens are signed once per caller and callee and reused until shortly before they expire.
 */
export class ServiceCredentials {
  private readonly cache = new Map<string, { token: string; renewAt: number }>();

  private readonly secret: string | undefined;

  constructor(secret: string | undefined) {
    this.secret = secret;
  }

  /** True when calls carry a token (the host has a service secret). */
  get enabled(): boolean {
    return this.secret !== undefined;
  }

  /** The headers that authenticate `caller` to `audience`; none without a secret. */
  async headers(caller: string, audience: string): Promise<Record<string, string>> {
    const token = await this.token(caller, audience);
    return token === undefined ? {} : { [SERVICE_TOKEN_HEADER]: token };
  }

  /** A token for `caller` calling `audience`, or undefined without a secret. */
  async token(caller: string, audience: string): Promise<string | undefined> {
    if (this.secret === undefined) return undefined;
    const key = `${caller}\u0000${audience}`;
    const cached = this.cache.get(key);
    if (cached && cached.renewAt > Date.now()) return cached.token;
    const token = await signServiceToken({ secret: this.secret, caller, audience, ttlSeconds: TOKEN_TTL_SECONDS });
    this.cache.set(key, { token, renewAt: Date.now() + (TOKEN_TTL_SECONDS - 15) * 1000 });
    return token;
  }
}
