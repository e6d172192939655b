import Type, { type Static } from 'typebox';
import { secret } from '../../schema/index.ts';

/**
 * The settings of browser login with OpenID Connect, as a TypeBox schema a service puts in its own settings (the web
 * app's service holds them as `login`). Every field is optional: login stays off until `issuer` is set, so a laptop
 * runs open with no provider. Secrets accept `*_FILE` twins like every secret setting.
 *
 * @example
 * service({ name: 'web', version: '1.0.0', settings: t.Object({ login: OidcSettingsSchema }) })
 */
export const OidcSettingsSchema = Type.Object(
  {
    /** The provider's issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`. Unset: login is off. */
    issuer: Type.Optional(Type.String({ minLength: 1, 'x-gantry-env': 'GANTRY_OIDC_ISSUER' })),
    /** The client id registered at the provider. */
    clientId: Type.Optional(Type.String({ minLength: 1, 'x-gantry-env': 'GANTRY_OIDC_CLIENT_ID' })),
    /** The client secret (confidential client, `client_secret_basic`). */
    clientSecret: Type.Optional(secret(Type.String({ minLength: 1, 'x-gantry-env': 'GANTRY_OIDC_CLIENT_SECRET' }))),
    /** The callback URL registered at the provider, e.g. `https://app.example.com/auth/callback`. */
    redirectUrl: Type.Optional(Type.String({ minLength: 1, 'x-gantry-env': 'GANTRY_OIDC_REDIRECT_URL' })),
    /** Scopes asked for, separated by spaces; `openid` is always among them. */
    scopes: Type.String({ default: 'openid profile email', 'x-gantry-env': 'GANTRY_OIDC_SCOPES' }),
    /**
     * The key sessions are encrypted with (32 characters or more), shared by every instance. Unset outside prod: a
     * random key per process, so sessions end at a restart. Required in prod.
     */
    sessionSecret: Type.Optional(secret(Type.String({ minLength: 32, 'x-gantry-env': 'GANTRY_OIDC_SESSION_SECRET' }))),
    /** How long a session lasts after login, in seconds (no sliding renewal); default 8 hours. */
    sessionMaxAgeSeconds: Type.Integer({
      minimum: 60,
      maximum: 604_800,
      default: 28_800,
      'x-gantry-env': 'GANTRY_OIDC_SESSION_MAX_AGE_SECONDS',
    }),
    /**
     * The ID token claim holding the user's roles, copied into the session (`ctx.auth.roles`, `requireRole`, an
     * event's `roles`): a string or an array of strings, a dotted path for nested claims (`realm_access.roles`).
     */
    rolesClaim: Type.String({ default: 'roles', minLength: 1, 'x-gantry-env': 'GANTRY_OIDC_ROLES_CLAIM' }),
    /** The name of the session cookie. */
    cookieName: Type.String({ default: 'gantry_session', pattern: '^[A-Za-z0-9_-]+$' }),
  },
  { default: {} },
);

/** The resolved login settings. */
export type OidcSettings = Static<typeof OidcSettingsSchema>;
