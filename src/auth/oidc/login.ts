import { randomBytes } from 'node:crypto';
import { parseCookie, type SetCookie, stringifySetCookie } from 'cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import type { GantryEnv } from '../../config/env.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { HostPlugin, HostPluginApi } from '../../host/plugin.ts';
import { setRequestIdentity } from '../../http/server.ts';
import { stringsAt } from '../bearer.ts';
import { unauthenticated } from '../challenge.ts';
import { securityOf } from '../guard.ts';
import type { AuthIdentity } from '../identity.ts';
import { CSRF_HEADER, checkCsrf, isUnsafeMethod } from './csrf.ts';
import { ephemeralSecret, type SessionData, SessionSealer } from './session.ts';
import type { OidcSettings } from './settings.ts';

/** Options of {@link OidcLogin}. */
export interface OidcLoginOptions {
  /**
   * Path prefixes that need a session once login is on (`/app` covers `/app/` and `/app/events`). A browser navigation
   * without one is sent to the login; any other request gets 401 problem+json.
   */
  protect: readonly string[];
  /** Where the login routes live; default `/auth` (`/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/session`). */
  basePath?: string;
  /** Where a login lands when it was not started from a protected page; default `/`. */
  home?: string;
}

/** The login settings once checked: login is on. */
interface ActiveLogin {
  issuer: URL;
  clientId: string;
  clientSecret: string;
  redirectUrl: URL;
  scope: string;
  maxAgeSeconds: number;
  cookieName: string;
  rolesClaim: string;
  /** False only on plain http loopback in dev and test: a browser drops Secure cookies sent over http elsewhere. */
  secure: boolean;
  /** Discovery over plain http is allowed only where cookies may be insecure too. */
  insecureProvider: boolean;
  sealer: SessionSealer;
}

/** How long a login may take at the provider, in seconds: the life of the login cookie. */
const LOGIN_MAX_AGE_SECONDS = 600;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
/**
 * Bounds on the roles a session keeps: they travel in the cookie, and browsers drop cookies past about 4 KiB (a
 * session is then lost without a word), so a provider sending hundreds of groups must be noticed, not obeyed.
 */
const MAX_ROLES = 32;
const MAX_ROLE_LENGTH = 64;

/**
 * Browser login with OpenID Connect (authorisation code flow with PKCE, by `openid-client`) as a host plugin, and the
 * guard of the paths it protects.
 *
 * The settings come from the config of the service that owns them (see {@link OidcSettingsSchema}): that service
 * hands them over with {@link OidcLogin.configure} in its `setup` hook, which runs before the host builds its routes.
 * Without an issuer, login is off and nothing is guarded, so a laptop runs open.
 *
 * Once on: `GET /auth/login` sends the browser to the provider (state, nonce and PKCE challenge; the verifier waits in
 * an encrypted, short-lived cookie); `GET /auth/callback` checks the state, exchanges the code and verifies the ID
 * token, then sets the session cookie (encrypted, HttpOnly, SameSite=Lax, Secure except on http loopback in dev and
 * test, bounded life) and a readable CSRF cookie; `POST /auth/logout` ends the session; `GET /auth/session` says who is
 * logged in. Requests under a protected prefix need the session (its subject becomes `ctx.auth`, method `session`),
 * and their POST, PUT, PATCH and DELETE need the CSRF token in `x-csrf-token`.
 *
 * Once on, the login also hands its sessions to the host's security, so events that list `session` among their
 * methods (`auth: ['bearer', 'session']`) accept it wherever they live, and `requireRole` accepts it with the roles the
 * ID token's `rolesClaim` gave at login.
 *
 * @example
 * const login = new OidcLogin({ protect: ['/app', '/customers'] });
 * // in the owning service: .setup((ctx) => login.configure(ctx.settings.login))
 * defineHost({ services: [web], plugins: [login.plugin()] });
 */
export class OidcLogin {
  private settings: OidcSettings | undefined;
  private active: ActiveLogin | undefined;
  private readonly basePath: string;
  private readonly home: string;
  private readonly protect: readonly string[];

  constructor(options: OidcLoginOptions) {
    this.basePath = (options.basePath ?? '/auth').replace(/\/+$/, '');
    this.home = options.home ?? '/';
    this.protect = options.protect.map((prefix) => prefix.replace(/\/+$/, ''));
  }

  /** Hands over the resolved settings; call it from the owning service's `setup` hook. */
  configure(settings: OidcSettings): void {
    this.settings = settings;
  }

  /** True once the host has built its routes with login on. */
  get enabled(): boolean {
    return this.active !== undefined;
  }

  /** The name of the readable cookie that carries the CSRF token to the page's script. */
  get csrfCookieName(): string {
    return `${this.settings?.cookieName ?? 'gantry_session'}_csrf`;
  }

  /** The host plugin: login routes and the guard, registered when the host builds its HTTP server. */
  plugin(): HostPlugin {
    return {
      name: 'oidc-login',
      register: (api) => {
        api.routes((app) => {
          this.active = activate(this.settings, api.info.env);
          if (!this.active) {
            api.log.info('browser login is off (no OIDC issuer configured): the web app is open');
            return;
          }
          this.register(app, this.active, api);
        });
      },
    };
  }

  private register(app: FastifyInstance, login: ActiveLogin, api: HostPluginApi): void {
    const base = this.basePath;
    const csrfCookie = `${login.cookieName}_csrf`;
    const loginCookie = `${login.cookieName}_login`;
    const origin = login.redirectUrl.origin;
    let discovered: Promise<oidc.Configuration> | undefined;

    // Discovered at the first login, not at start: a provider that is down must not keep the host from starting.
    const configuration = (): Promise<oidc.Configuration> => {
      discovered ??= oidc
        .discovery(login.issuer, login.clientId, undefined, oidc.ClientSecretBasic(login.clientSecret), {
          ...(login.insecureProvider ? { execute: [oidc.allowInsecureRequests] } : {}),
          timeout: 10,
        })
        .catch((error: unknown) => {
          discovered = undefined;
          throw new GantryError(
            'GANTRY_ERR_AUTH_PROVIDER_UNAVAILABLE',
            'the identity provider could not be reached; try again shortly',
            { cause: error },
          );
        });
      return discovered;
    };

    const cookie = (name: string, value: string, maxAge: number, extra: Partial<SetCookie> = {}): string =>
      stringifySetCookie({
        name,
        value,
        maxAge,
        path: '/',
        httpOnly: true,
        secure: login.secure,
        sameSite: 'lax',
        ...extra,
      });

    app.get(`${base}/login`, async (request, reply) => {
      const returnTo = safeReturnTo((request.query as Record<string, unknown>).returnTo, this.home);
      const config = await configuration();
      const transaction = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        codeVerifier: oidc.randomPKCECodeVerifier(),
        returnTo,
      };
      const target = oidc.buildAuthorizationUrl(config, {
        redirect_uri: login.redirectUrl.href,
        scope: login.scope,
        state: transaction.state,
        nonce: transaction.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(transaction.codeVerifier),
        code_challenge_method: 'S256',
      });
      const sealed = await login.sealer.sealLogin(transaction, LOGIN_MAX_AGE_SECONDS);
      // Path limited to the callback: the cookie travels nowhere else.
      reply.header('set-cookie', cookie(loginCookie, sealed, LOGIN_MAX_AGE_SECONDS, { path: `${base}/callback` }));
      return reply.header('cache-control', 'no-store').redirect(target.href, 302);
    });

    app.get(`${base}/callback`, async (request, reply) => {
      const cookies = parseCookie(request.headers.cookie ?? '');
      const transaction = await login.sealer.openLogin(cookies[loginCookie]);
      // Whatever happens next, this login attempt is used up.
      reply.header('set-cookie', cookie(loginCookie, '', 0, { path: `${base}/callback` }));
      if (!transaction) {
        throw new GantryError(
          'GANTRY_ERR_AUTH_LOGIN_FAILED',
          'no login in progress here (or it expired); log in again',
        );
      }
      const query = request.query as Record<string, unknown>;
      if (typeof query.error === 'string') {
        throw new GantryError('GANTRY_ERR_AUTH_LOGIN_FAILED', `the provider refused the login: ${query.error}`);
      }
      if (query.state !== transaction.state) {
        throw new GantryError('GANTRY_ERR_AUTH_LOGIN_FAILED', 'the login state does not match; log in again');
      }
      const config = await configuration();
      // The URL the provider sent the browser to, rebuilt from the configured one rather than from the Host header.
      const current = new URL(login.redirectUrl.href);
      current.search = new URL(request.url, origin).search;
      let claims: oidc.IDToken | undefined;
      try {
        const tokens = await oidc.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: transaction.codeVerifier,
          expectedState: transaction.state,
          expectedNonce: transaction.nonce,
          idTokenExpected: true,
        });
        claims = tokens.claims();
      } catch (error) {
        if (error instanceof GantryError) throw error;
        // The provider refused the code (a wrong PKCE verifier, a replayed code) or the ID token failed a check.
        throw unauthenticated('the login could not be verified; log in again', [], error);
      }
      if (!claims?.sub) throw unauthenticated('the provider sent no ID token subject', []);
      const csrf = randomBytes(24).toString('base64url');
      const claimed = stringsAt(claims, login.rolesClaim);
      const roles = claimed.filter((role) => role.length <= MAX_ROLE_LENGTH).slice(0, MAX_ROLES);
      if (roles.length < claimed.length) {
        api.log.warn(
          { requestId: request.id, subject: claims.sub, claimed: claimed.length, kept: roles.length },
          `the ID token's ${login.rolesClaim} holds more (or longer) roles than a session keeps; some were dropped`,
        );
      }
      const session = await login.sealer.sealSession(
        { subject: claims.sub, issuer: claims.iss, roles, csrf },
        login.maxAgeSeconds,
      );
      reply.header('set-cookie', [
        cookie(loginCookie, '', 0, { path: `${base}/callback` }),
        cookie(login.cookieName, session, login.maxAgeSeconds),
        // Readable by the page's script, which echoes it in x-csrf-token; worthless without the session cookie.
        cookie(csrfCookie, csrf, login.maxAgeSeconds, { httpOnly: false }),
      ]);
      api.log.info({ requestId: request.id, subject: claims.sub }, 'logged in');
      return reply.header('cache-control', 'no-store').redirect(transaction.returnTo, 302);
    });

    app.post(`${base}/logout`, async (request, reply) => {
      const session = await login.sealer.openSession(parseCookie(request.headers.cookie ?? '')[login.cookieName]);
      if (session) {
        checkCsrf(request, session.csrf, origin);
        api.log.info({ requestId: request.id, subject: session.subject }, 'logged out');
      }
      reply.header('set-cookie', [cookie(login.cookieName, '', 0), cookie(csrfCookie, '', 0, { httpOnly: false })]);
      return reply.code(204).send();
    });

    app.get(`${base}/session`, async (request) => {
      const session = await login.sealer.openSession(parseCookie(request.headers.cookie ?? '')[login.cookieName]);
      if (!session) throw unauthenticated('not logged in', []);
      return {
        subject: session.subject,
        roles: session.roles,
        expiresAt: new Date(session.expiresAt * 1000).toISOString(),
      };
    });

    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split('?')[0] ?? '/';
      if (!this.protects(path)) return;
      const session = await login.sealer.openSession(parseCookie(request.headers.cookie ?? '')[login.cookieName]);
      if (!session) {
        if (isNavigation(request)) {
          const target = `${base}/login?returnTo=${encodeURIComponent(request.url)}`;
          await reply.header('cache-control', 'no-store').redirect(target, 302);
          return reply;
        }
        throw unauthenticated('log in first: this path needs a session', []);
      }
      setRequestIdentity(request, identityOf(session));
      if (isUnsafeMethod(request.method)) checkCsrf(request, session.csrf, origin);
      return undefined;
    });
    // Events that accept `session` (and admin routes) open the same cookie through the host's security.
    securityOf(app)?.acceptSessions({
      cookieName: login.cookieName,
      identify: async (cookie, request) => {
        const session = await login.sealer.openSession(cookie);
        if (!session) return undefined;
        if (isUnsafeMethod(request.method)) checkCsrf(request, session.csrf, origin);
        return identityOf(session);
      },
    });
    api.log.info({ issuer: login.issuer.href, protect: this.protect, csrfHeader: CSRF_HEADER }, 'browser login is on');
  }

  private protects(path: string): boolean {
    return this.protect.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
  }
}

/**
 * Checks the settings and works out the cookie rules; undefined when login is off.
 *
 * @throws GantryError `GANTRY_ERR_CONFIG_INVALID` when an issuer is set but the rest is missing or unsafe.
 */
export function activate(settings: OidcSettings | undefined, env: GantryEnv): ActiveLogin | undefined {
  if (!settings?.issuer) return undefined;
  const problems: string[] = [];
  if (!settings.clientId) problems.push('clientId (GANTRY_OIDC_CLIENT_ID) is not set');
  if (!settings.clientSecret) problems.push('clientSecret (GANTRY_OIDC_CLIENT_SECRET) is not set');
  if (!settings.redirectUrl) problems.push('redirectUrl (GANTRY_OIDC_REDIRECT_URL) is not set');
  if (env === 'prod' && !settings.sessionSecret) {
    problems.push('sessionSecret (GANTRY_OIDC_SESSION_SECRET) is required in prod');
  }
  const issuer = parseUrl(settings.issuer, 'issuer', problems);
  const redirectUrl = settings.redirectUrl ? parseUrl(settings.redirectUrl, 'redirectUrl', problems) : undefined;
  const devLike = env === 'dev' || env === 'test';
  const plainLoopback = (url: URL | undefined): boolean =>
    url !== undefined && url.protocol === 'http:' && LOOPBACK.has(url.hostname);
  if (redirectUrl && redirectUrl.protocol !== 'https:' && !(devLike && plainLoopback(redirectUrl))) {
    problems.push('redirectUrl must be https (plain http only on a loopback address in dev and test)');
  }
  if (issuer && issuer.protocol !== 'https:' && !(devLike && plainLoopback(issuer))) {
    problems.push('issuer must be https (plain http only on a loopback address in dev and test)');
  }
  if (problems.length > 0 || !issuer || !redirectUrl) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `login (OIDC) is misconfigured:\n  - ${problems.join('\n  - ')}`,
      {
        details: problems,
      },
    );
  }
  const scopes = new Set(['openid', ...settings.scopes.split(/\s+/).filter(Boolean)]);
  return {
    issuer,
    clientId: settings.clientId as string,
    clientSecret: settings.clientSecret as string,
    redirectUrl,
    scope: [...scopes].join(' '),
    maxAgeSeconds: settings.sessionMaxAgeSeconds,
    cookieName: settings.cookieName,
    rolesClaim: settings.rolesClaim,
    secure: !plainLoopback(redirectUrl),
    insecureProvider: plainLoopback(issuer),
    sealer: new SessionSealer(settings.sessionSecret ?? ephemeralSecret()),
  };
}

/** A path of this site to return to: anything else (another site, `//host`, `/\host`) falls back to `fallback`. */
export function safeReturnTo(value: unknown, fallback: string): string {
  if (typeof value !== 'string' || value.length > 2048) return fallback;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return fallback;
  return value;
}

/** The caller a session stands for: `ctx.auth` of its requests. */
function identityOf(session: SessionData): AuthIdentity {
  return {
    subject: session.subject,
    method: 'session',
    scopes: [],
    roles: session.roles,
    claims: { sub: session.subject, iss: session.issuer },
  };
}

/** A top-level page load, which can follow a redirect to the provider (an XHR or EventSource cannot). */
function isNavigation(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const mode = request.headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  return (request.headers.accept ?? '').includes('text/html');
}

function parseUrl(value: string, name: string, problems: string[]): URL | undefined {
  try {
    return new URL(value);
  } catch {
    problems.push(`${name} is not a URL`);
    return undefined;
  }
}
