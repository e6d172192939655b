/**
 * Gantry's security: verifying credentials (bearer JWTs, API keys, basic auth, service tokens), authorisation rules,
 * the guard of admin routes, browser login with OpenID Connect, and the helpers to make hashes and service tokens.
 * @packageDocumentation
 */
export { type ApiKeyRecord, ApiKeyVerifier, generateApiKey, hashApiKey } from './api-key.ts';
export { type BasicUserRecord, BasicVerifier, hashPassword, SCRYPT_DEFAULTS, verifyPassword } from './basic.ts';
export { DEFAULT_JWT_ALGORITHMS, JwtVerifier, type JwtVerifierOptions } from './bearer.ts';
export { challengesOf } from './challenge.ts';
export { type RouteGuard, requireRole } from './guard.ts';
export {
  AUTH_METHODS,
  type AuthIdentity,
  type AuthMethod,
  type CredentialMethod,
  type SessionMethod,
} from './identity.ts';
export { CSRF_HEADER, OidcLogin, type OidcLoginOptions, type OidcSettings, OidcSettingsSchema } from './oidc/index.ts';
export {
  type AuthInput,
  type AuthPlan,
  type AuthPredicate,
  type AuthRequirement,
  type EventAuth,
  forbidden,
} from './rules.ts';
export {
  HostSecurity,
  type HostSecurityOptions,
  type RequestHeaders,
  SECURITY_SCHEME_NAMES,
  type SecuredEvent,
} from './security.ts';
export {
  SERVICE_ROLE,
  SERVICE_TOKEN_HEADER,
  type ServiceTokenOptions,
  ServiceTokenVerifier,
  type ServiceTokenVerifierOptions,
  signServiceToken,
} from './service-token.ts';
