/** The ways a caller can prove who it is. `public` means no proof is asked. */
export type AuthMethod = 'public' | 'bearer' | 'apiKey' | 'basic' | 'service';

/** The methods that carry a credential (every {@link AuthMethod} but `public`). */
export type CredentialMethod = Exclude<AuthMethod, 'public'>;

/**
 * How a browser proved who it is: a session cookie set by the OpenID Connect login (`oidcLogin`). It is not an
 * {@link AuthMethod} events declare: the login guards whole paths, and its identity reaches handlers the same way.
 */
export type SessionMethod = 'session';

/** Every {@link AuthMethod}, in the order challenges are listed in `WWW-Authenticate`. */
export const AUTH_METHODS: readonly AuthMethod[] = ['public', 'bearer', 'apiKey', 'basic', 'service'];

/**
 * Who made a request, once its credential was verified: `ctx.auth` in handlers. Only `subject` is written to logs;
 * claims may hold personal data and stay out of them.
 */
export interface AuthIdentity {
  /** The verified subject: a JWT's `sub`, an API key's subject, a basic-auth user name, a calling service's name. */
  readonly subject: string;
  /** How the caller proved it. */
  readonly method: CredentialMethod | SessionMethod;
  /** Scopes granted (a JWT's `scope`/`scp`, an API key's or user's configured scopes). */
  readonly scopes: readonly string[];
  /** Roles held (a JWT's roles claim, an API key's or user's configured roles). */
  readonly roles: readonly string[];
  /** Every verified claim of a token; for API keys and basic auth, the configured record's id. */
  readonly claims: Readonly<Record<string, unknown>>;
}
