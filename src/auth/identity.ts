/**
 * The ways a caller can prove who it is. `public` means no proof is asked; `session` is the cookie of the browser login
 * (`OidcLogin`), available once that login is on.
 */
export type AuthMethod = 'public' | 'bearer' | 'apiKey' | 'basic' | 'service' | 'session';

/** The methods that carry a credential (every {@link AuthMethod} but `public`). */
export type CredentialMethod = Exclude<AuthMethod, 'public'>;

/** How a browser proved who it is: the session cookie set by the OpenID Connect login (`OidcLogin`). */
export type SessionMethod = Extract<AuthMethod, 'session'>;

/** Every {@link AuthMethod}, in the order challenges are listed in `WWW-Authenticate`. */
export const AUTH_METHODS: readonly AuthMethod[] = ['public', 'bearer', 'apiKey', 'basic', 'service', 'session'];

/**
 * Who made a request, once its credential was verified: `ctx.auth` in handlers. Only `subject` is written to logs;
 * claims may hold personal data and stay out of them.
 */
export interface AuthIdentity {
  /**
   * The verified subject: a JWT's `sub`, an API key's subject, a basic-auth user name, a calling service's name, the
   * ID token's `sub` of a browser session.
   */
  readonly subject: string;
  /** How the caller proved it. */
  readonly method: CredentialMethod;
  /** Scopes granted (a JWT's `scope`/`scp`, an API key's or user's configured scopes). */
  readonly scopes: readonly string[];
  /** Roles held (a JWT's or ID token's roles claim, an API key's or user's configured roles). */
  readonly roles: readonly string[];
  /** Every verified claim of a token; for API keys and basic auth, the configured record's id. */
  readonly claims: Readonly<Record<string, unknown>>;
}
