import { parseCookie } from 'cookie';
import type { GantryEnv } from '../config/env.ts';
import type { AuthConfig } from '../config/host-config.ts';
import { GantryError } from '../errors/gantry-error.ts';
import { ApiKeyVerifier } from './api-key.ts';
import { BasicVerifier } from './basic.ts';
import { JwtVerifier } from './bearer.ts';
import { challenge, unauthenticated } from './challenge.ts';
import { AUTH_METHODS, type AuthIdentity, type AuthMethod, type CredentialMethod } from './identity.ts';
import {
  type AuthInput,
  type AuthPlan,
  type AuthRequirement,
  checkGrants,
  checkPredicate,
  type EventAuth,
  PUBLIC_PLAN,
  resolvePlan,
} from './rules.ts';
import { SERVICE_TOKEN_HEADER, ServiceTokenVerifier } from './service-token.ts';

/** One HTTP event as security sees it. */
export interface SecuredEvent {
  service: string;
  /** `GET /orders/:id` */
  event: string;
  auth: EventAuth | undefined;
}

/** Options of {@link HostSecurity.create}. */
export interface HostSecurityOptions {
  env: GantryEnv;
  config: AuthConfig;
  /** Guard admin endpoints; defaults to true in prod only. */
  adminProtect?: boolean;
  events: readonly SecuredEvent[];
}

/** Request headers as Node gives them. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What credential checks read of a request (a Fastify request is one): its method, for CSRF, and its headers. */
export interface AuthRequest {
  readonly method: string;
  readonly headers: RequestHeaders;
}

/**
 * Lets host security accept a browser login's sessions as the `session` method. The login hands one over with
 * {@link HostSecurity.acceptSessions} once it is on.
 */
export interface SessionAuthenticator {
  /** The session cookie's name: where the credential is read, and what OpenAPI documents. */
  readonly cookieName: string;
  /**
   * Opens a session cookie and, for POST, PUT, PATCH and DELETE, checks the request's CSRF token and origin.
   *
   * @returns The session's identity (method `session`), or undefined when the cookie does not open (tampered,
   * sealed with another key, expired).
   * @throws GantryError 403 `GANTRY_ERR_AUTH_CSRF`.
   */
  identify(cookie: string, request: AuthRequest): Promise<AuthIdentity | undefined>;
}

/** The session cookie name OpenAPI documents before a login has said its own (the login's default). */
export const DEFAULT_SESSION_COOKIE = 'gantry_session';

/** The OpenAPI security scheme name of each method. */
export const SECURITY_SCHEME_NAMES: Readonly<Record<CredentialMethod, string>> = {
  bearer: 'bearerAuth',
  apiKey: 'apiKeyAuth',
  basic: 'basicAuth',
  service: 'serviceAuth',
  session: 'sessionAuth',
};

type Verifiers = {
  bearer?: JwtVerifier;
  apiKey?: ApiKeyVerifier;
  basic?: BasicVerifier;
  service?: ServiceTokenVerifier;
};

/**
 * The security of one host: the plan of every HTTP event (its own `auth` over the host default), the verifiers of
 * the configured methods, and the checks the HTTP server runs with them. Built at start, so a misconfiguration (and,
 * in prod, an event that declares no auth) stops start-up instead of surfacing on the first request.
 */
export class HostSecurity {
  /** Events that run public only because nothing was declared (outside prod); the host logs them at start. */
  readonly implicitlyPublic: readonly string[];
  private readonly plans = new Map<string, AuthPlan>();
  private readonly verifiers: Verifiers;
  private readonly services: readonly string[];
  private readonly options: HostSecurityOptions;
  /** The browser login's sessions, once a login that is on has handed them over. */
  private sessions: SessionAuthenticator | undefined;

  private constructor(
    options: HostSecurityOptions,
    verifiers: Verifiers,
    plans: Map<string, AuthPlan>,
    implicitlyPublic: string[],
  ) {
    this.options = options;
    this.verifiers = verifiers;
    this.plans = plans;
    this.implicitlyPublic = implicitlyPublic;
    this.services = [...new Set(options.events.map((e) => e.service))];
  }

  /**
   * Resolves every event's plan and builds the verifiers the plans use.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_UNDECLARED` in prod when events declare no auth and the host sets no default,
   * listing them; `GANTRY_ERR_AUTH_MISCONFIGURED` when a method in use has no settings or they are contradictory.
   */
  static create(options: HostSecurityOptions): HostSecurity {
    const hostDefault = parseMethods(options.config.default, 'host.auth.default (GANTRY_AUTH_DEFAULT)');
    const plans = new Map<string, AuthPlan>();
    const undeclared: string[] = [];
    const problems: string[] = [];
    for (const { service, event, auth } of options.events) {
      const name = `${service}: ${event}`;
      const declaredMethods = methodsDeclared(auth);
      const unknown = declaredMethods.filter((m) => !(AUTH_METHODS as readonly string[]).includes(m));
      if (unknown.length > 0) problems.push(`${name} names unknown auth method(s) ${unknown.join(', ')}`);
      const plan = resolvePlan(auth, hostDefault);
      if (plan === null) {
        // Requirements with no way to check them must not quietly run public, in any environment.
        if (hasRequirements(auth)) {
          problems.push(`${name} requires scopes, roles or a rule but names no method (and the host sets no default)`);
        } else undeclared.push(name);
        plans.set(key(service, event), PUBLIC_PLAN);
        continue;
      }
      if (plan.methods.length === 0 && (plan.scopes.length > 0 || plan.roles.length > 0 || plan.allow)) {
        problems.push(`${name} is public but requires scopes, roles or a rule`);
      }
      plans.set(key(service, event), plan);
    }
    if (options.env === 'prod' && undeclared.length > 0) {
      throw new GantryError(
        'GANTRY_ERR_AUTH_UNDECLARED',
        `prod refuses HTTP events that declare no auth while the host sets no default: ${undeclared.join(', ')}. ` +
          `Declare auth on each (auth: 'public' for open ones) or set GANTRY_AUTH_DEFAULT`,
        { details: undeclared },
      );
    }
    const used = new Set<CredentialMethod>();
    for (const plan of plans.values()) for (const method of plan.methods) used.add(method);
    const configured = configuredMethods(options.config);
    for (const method of used) {
      // Sessions come from a browser login that is configured later (by its service at setup): checked when the
      // HTTP server is ready, see checkSessions.
      if (method === 'session') continue;
      if (!configured.includes(method)) problems.push(`events use '${method}' but ${MISSING[method]}`);
    }
    if (problems.length > 0) {
      throw new GantryError('GANTRY_ERR_AUTH_MISCONFIGURED', `auth is misconfigured:\n  - ${problems.join('\n  - ')}`, {
        details: problems,
      });
    }
    // Admin endpoints accept any configured method, so verifiers are built for every configured one.
    const verifiers = buildVerifiers(options, configured);
    return new HostSecurity(options, verifiers, plans, options.env === 'prod' ? [] : undeclared);
  }

  /** The plan of one event; public for an event this host does not know. */
  plan(service: string, event: string): AuthPlan {
    return this.plans.get(key(service, event)) ?? PUBLIC_PLAN;
  }

  /**
   * The plan of admin endpoints requiring `role`, or null when they are open (admin protection is off: outside prod
   * unless `GANTRY_ADMIN_PROTECT=true`).
   */
  adminPlan(role: string): AuthPlan | null {
    const protect = this.options.adminProtect ?? this.options.env === 'prod';
    if (!protect) return null;
    return { methods: this.configuredMethods(), anonymous: false, scopes: [], roles: [role] };
  }

  /** The methods the host has settings for, and `session` once a browser login is on. */
  configuredMethods(): CredentialMethod[] {
    const methods = configuredMethods(this.options.config);
    if (this.sessions) methods.push('session');
    return methods;
  }

  /**
   * Accepts the sessions of a browser login as the `session` method: events that list it, and admin endpoints. A
   * login calls it when the host builds its routes with login on; a second login replaces the first.
   */
  acceptSessions(sessions: SessionAuthenticator): void {
    this.sessions = sessions;
  }

  /**
   * Checks that a browser login is on when events accept sessions; run once the HTTP server's routes are built.
   *
   * @throws GantryError `GANTRY_ERR_AUTH_MISCONFIGURED` naming those events.
   */
  checkSessions(): void {
    if (this.sessions) return;
    const events = [...this.plans].filter(([, plan]) => plan.methods.includes('session')).map(([name]) => name);
    if (events.length === 0) return;
    const names = events.map((name) => name.replace('\u0000', ': '));
    throw new GantryError(
      'GANTRY_ERR_AUTH_MISCONFIGURED',
      `auth is misconfigured:\n  - events use 'session' but no browser login is on (add OidcLogin's plugin and set ` +
        `GANTRY_OIDC_ISSUER and the rest of GANTRY_OIDC_*): ${names.join(', ')}`,
      { details: names },
    );
  }

  /**
   * Verifies the credential a request carries for a plan and checks its scopes and roles.
   *
   * @param request The request's method (CSRF checks of sessions) and headers.
   * @param service The service the event belongs to: service tokens must be meant for it.
   * @returns The identity, or undefined when the plan lets anonymous requests through and none was sent.
   * @throws GantryError 401 `GANTRY_ERR_AUTH_UNAUTHENTICATED` with challenges, 403 `GANTRY_ERR_AUTH_FORBIDDEN`,
   * 403 `GANTRY_ERR_AUTH_CSRF` for a state-changing request made with a session but without its CSRF token.
   */
  async authenticate(plan: AuthPlan, request: AuthRequest, service?: string): Promise<AuthIdentity | undefined> {
    if (plan.methods.length === 0) return undefined;
    const presented = this.presented(plan, request.headers);
    if (!presented) {
      if (plan.anonymous) return undefined;
      throw unauthenticated(
        `this endpoint needs credentials: ${plan.methods.map(describe).join(' or ')}`,
        plan.methods.flatMap((method) => this.challengeFor(method) ?? []),
      );
    }
    const identity = await this.verify(presented, request, service);
    checkGrants(plan, identity);
    return identity;
  }

  /** Runs the plan's `allow` rule on the validated input; a refusal is a 403. */
  authorize(plan: AuthPlan, identity: AuthIdentity | undefined, input: AuthInput): Promise<void> {
    return checkPredicate(plan, identity, input);
  }

  /** The OpenAPI security schemes of the configured methods, by scheme name. */
  securitySchemes(): Record<string, Record<string, string>> {
    const schemes: Record<string, Record<string, string>> = {};
    const names = { apiKeyHeader: this.options.config.apiKeyHeader, sessionCookie: this.sessions?.cookieName };
    for (const method of this.configuredMethods()) {
      schemes[SECURITY_SCHEME_NAMES[method]] = securityScheme(method, names);
    }
    return schemes;
  }

  /** The credential of the first method of the plan that the request carries one for. */
  private presented(
    plan: AuthPlan,
    headers: RequestHeaders,
  ): { method: CredentialMethod; credential: string } | undefined {
    const authorization = single(headers.authorization);
    for (const method of plan.methods) {
      const credential =
        method === 'session'
          ? this.sessionCookie(headers)
          : credentialFor(method, headers, authorization, this.options.config.apiKeyHeader);
      if (credential !== undefined) return { method, credential };
    }
    return undefined;
  }

  /** The session cookie a request carries; never one while no login is on. */
  private sessionCookie(headers: RequestHeaders): string | undefined {
    const cookies = single(headers.cookie);
    if (!this.sessions || cookies === undefined) return undefined;
    return nonEmpty(parseCookie(cookies)[this.sessions.cookieName]);
  }

  private async verify(
    presented: { method: CredentialMethod; credential: string },
    request: AuthRequest,
    service: string | undefined,
  ): Promise<AuthIdentity> {
    const { method, credential } = presented;
    switch (method) {
      case 'bearer':
        return (this.verifiers.bearer as JwtVerifier).verify(credential);
      case 'apiKey':
        return Promise.resolve().then(() => (this.verifiers.apiKey as ApiKeyVerifier).verify(credential));
      case 'basic':
        return (this.verifiers.basic as BasicVerifier).verify(credential);
      case 'service':
        return (this.verifiers.service as ServiceTokenVerifier).verify(
          credential,
          service === undefined ? this.services : [service],
        );
      case 'session': {
        const identity = await (this.sessions as SessionAuthenticator).identify(credential, request);
        // No challenge: a browser cannot answer one, it logs in through the login's pages.
        if (!identity) throw unauthenticated('the session has ended or is not valid; log in again', []);
        return identity;
      }
    }
  }

  /** The `WWW-Authenticate` challenge of a method; none for sessions, which no HTTP scheme describes. */
  private challengeFor(method: CredentialMethod): string | undefined {
    switch (method) {
      case 'bearer':
        return challenge('Bearer');
      case 'apiKey':
        return challenge('ApiKey', { header: this.options.config.apiKeyHeader });
      case 'basic':
        return challenge('Basic', { charset: 'UTF-8' });
      case 'service':
        return challenge('GantryService', { header: SERVICE_TOKEN_HEADER });
      case 'session':
        return undefined;
    }
  }
}

/** Names an OpenAPI security scheme needs from the host's settings. */
export interface SchemeNames {
  /** The API key header; default `x-api-key`. */
  apiKeyHeader?: string | undefined;
  /** The browser login's session cookie; default {@link DEFAULT_SESSION_COOKIE}. */
  sessionCookie?: string | undefined;
}

/** The OpenAPI security scheme of one method. */
export function securityScheme(method: CredentialMethod, names: SchemeNames = {}): Record<string, string> {
  switch (method) {
    case 'bearer':
      return { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' };
    case 'apiKey':
      return { type: 'apiKey', in: 'header', name: names.apiKeyHeader ?? 'x-api-key' };
    case 'basic':
      return { type: 'http', scheme: 'basic' };
    case 'service':
      return {
        type: 'apiKey',
        in: 'header',
        name: SERVICE_TOKEN_HEADER,
        description: 'A short-lived service-to-service token (signServiceToken)',
      };
    case 'session':
      return {
        type: 'apiKey',
        in: 'cookie',
        name: names.sessionCookie ?? DEFAULT_SESSION_COOKIE,
        description:
          'The session cookie of the browser login (GET /auth/login); POST, PUT, PATCH and DELETE also need its ' +
          'CSRF token in x-csrf-token',
      };
  }
}

/**
 * The OpenAPI `security` of an operation: one alternative per accepted method (bearer ones list the required scopes,
 * others the roles), plus `{}` when the credential is optional; `[]` for a public operation.
 */
export function operationSecurity(plan: AuthPlan): Record<string, string[]>[] {
  const alternatives: Record<string, string[]>[] = plan.methods.map((method) => ({
    [SECURITY_SCHEME_NAMES[method]]: [...(method === 'bearer' ? plan.scopes : plan.roles)],
  }));
  if (alternatives.length > 0 && plan.anonymous) alternatives.push({});
  return alternatives;
}

const MISSING: Record<CredentialMethod, string> = {
  bearer: 'host.auth.jwt sets no keys (GANTRY_JWT_JWKS_URL, GANTRY_JWT_PUBLIC_KEYS or GANTRY_JWT_SECRET)',
  apiKey: 'host.auth.apiKeys is empty (GANTRY_API_KEYS)',
  basic: 'host.auth.basicUsers is empty (GANTRY_BASIC_USERS)',
  service: 'host.auth.serviceSecret is not set (GANTRY_SERVICE_SECRET)',
  session: 'no browser login is on (GANTRY_OIDC_ISSUER)',
};

function configuredMethods(config: AuthConfig): CredentialMethod[] {
  const methods: CredentialMethod[] = [];
  if (config.jwt.jwksUrl || config.jwt.publicKeys || config.jwt.secret) methods.push('bearer');
  if (config.apiKeys.length > 0) methods.push('apiKey');
  if (config.basicUsers.length > 0) methods.push('basic');
  if (config.serviceSecret) methods.push('service');
  return methods;
}

function buildVerifiers(options: HostSecurityOptions, methods: readonly CredentialMethod[]): Verifiers {
  const { config } = options;
  const verifiers: Verifiers = {};
  if (methods.includes('bearer')) {
    const jwt = config.jwt;
    verifiers.bearer = new JwtVerifier({
      ...(jwt.jwksUrl ? { jwksUrl: jwt.jwksUrl } : {}),
      ...(jwt.publicKeys ? { publicKeys: jwt.publicKeys } : {}),
      ...(jwt.secret ? { secret: jwt.secret } : {}),
      issuer: jwt.issuer ?? '',
      audience: list(jwt.audience),
      algorithms: list(jwt.algorithms),
      clockSkewSeconds: jwt.clockSkewSeconds,
      scopesClaim: jwt.scopesClaim,
      rolesClaim: jwt.rolesClaim,
      jwksCacheSeconds: jwt.jwksCacheSeconds,
      jwksCooldownSeconds: jwt.jwksCooldownSeconds,
    });
  }
  if (methods.includes('apiKey')) verifiers.apiKey = new ApiKeyVerifier(config.apiKeys, config.apiKeyHeader);
  if (methods.includes('basic')) verifiers.basic = new BasicVerifier(config.basicUsers);
  if (methods.includes('service')) {
    verifiers.service = new ServiceTokenVerifier({
      secrets: [config.serviceSecret, config.servicePreviousSecret].filter((s): s is string => Boolean(s)),
      maxAgeSeconds: config.serviceTokenMaxAgeSeconds,
      clockSkewSeconds: config.jwt.clockSkewSeconds,
    });
  }
  return verifiers;
}

function credentialFor(
  method: Exclude<CredentialMethod, 'session'>,
  headers: RequestHeaders,
  authorization: string | undefined,
  apiKeyHeader: string,
): string | undefined {
  switch (method) {
    case 'bearer':
      return schemeValue(authorization, 'bearer');
    case 'basic':
      return schemeValue(authorization, 'basic');
    case 'apiKey':
      return nonEmpty(single(headers[apiKeyHeader.toLowerCase()]));
    case 'service':
      return nonEmpty(single(headers[SERVICE_TOKEN_HEADER]));
  }
}

/** The credential after `scheme ` in an Authorization header (the scheme is case-insensitive, RFC 9110). */
function schemeValue(authorization: string | undefined, scheme: string): string | undefined {
  if (authorization === undefined) return undefined;
  const space = authorization.indexOf(' ');
  if (space < 0 || authorization.slice(0, space).toLowerCase() !== scheme) return undefined;
  return nonEmpty(authorization.slice(space + 1).trim());
}

function describe(method: CredentialMethod): string {
  switch (method) {
    case 'bearer':
      return 'a bearer token';
    case 'apiKey':
      return 'an API key';
    case 'basic':
      return 'a user name and password';
    case 'service':
      return 'a service token';
    case 'session':
      return 'a login session';
  }
}

function methodsDeclared(auth: EventAuth | undefined): string[] {
  if (auth === undefined) return [];
  if (typeof auth === 'string') return [auth];
  if (Array.isArray(auth)) return [...(auth as string[])];
  const methods = (auth as { methods?: string | string[] }).methods;
  return methods === undefined ? [] : typeof methods === 'string' ? [methods] : [...methods];
}

function hasRequirements(auth: EventAuth | undefined): boolean {
  if (auth === undefined || typeof auth === 'string' || Array.isArray(auth)) return false;
  const requirement = auth as AuthRequirement;
  return Boolean(requirement.scopes?.length || requirement.roles?.length || requirement.allow);
}

function parseMethods(value: string | undefined, where: string): AuthMethod[] {
  const methods = list(value);
  const unknown = methods.filter((m) => !(AUTH_METHODS as readonly string[]).includes(m));
  if (unknown.length > 0) {
    throw new GantryError(
      'GANTRY_ERR_AUTH_MISCONFIGURED',
      `${where} names unknown method(s) ${unknown.join(', ')}; use ${AUTH_METHODS.join(', ')}`,
    );
  }
  return methods as AuthMethod[];
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function key(service: string, event: string): string {
  return `${service}\u0000${event}`;
}
