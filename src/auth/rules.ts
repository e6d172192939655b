import { GantryError } from '../errors/gantry-error.ts';
import type { AuthIdentity, AuthMethod } from './identity.ts';

/** What an authorisation predicate sees of a request: its validated parts. */
export interface AuthInput {
  readonly params: Readonly<Record<string, unknown>>;
  readonly query: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly body: unknown;
}

/** A predicate on the caller and the validated input: true lets the request through, false answers 403. */
export type AuthPredicate = (identity: AuthIdentity, input: AuthInput) => boolean | Promise<boolean>;

/**
 * The full form of an event's `auth`: who may call it (methods, any one suffices) and what they must hold.
 *
 * @example
 * { methods: ['bearer', 'apiKey'], scopes: ['orders:write'] }
 * { roles: ['admin', 'support'], allow: (who, input) => who.subject === input.params.customerId }
 */
export interface AuthRequirement {
  /**
   * Accepted methods, any one suffices; the host's default (`host.auth.default`) when omitted. `public` in a list
   * with others makes the credential optional: absent, the request runs anonymously; present, it must be valid.
   */
  methods?: AuthMethod | readonly AuthMethod[];
  /** Every one of these scopes is required. */
  scopes?: readonly string[];
  /** At least one of these roles is required. */
  roles?: readonly string[];
  /** Runs after validation, with the input: false answers 403. */
  allow?: AuthPredicate;
}

/** An event's `auth`: one method, several (any one suffices), or a full {@link AuthRequirement}. */
export type EventAuth = AuthMethod | readonly AuthMethod[] | AuthRequirement;

/** An event's auth with the host default applied: what the HTTP server enforces for it. */
export interface AuthPlan {
  /** Accepted credential methods; empty for a public event. */
  readonly methods: readonly Exclude<AuthMethod, 'public'>[];
  /** True when a request without any credential may run (public, or `public` listed among methods). */
  readonly anonymous: boolean;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly allow?: AuthPredicate;
}

/** The plan of an event that is open to everyone. */
export const PUBLIC_PLAN: AuthPlan = { methods: [], anonymous: true, scopes: [], roles: [] };

/**
 * Applies the host default to an event's declaration. Returns null when neither declares any method: the caller
 * decides (deny in prod, public elsewhere).
 */
export function resolvePlan(declared: EventAuth | undefined, hostDefault: readonly AuthMethod[]): AuthPlan | null {
  const requirement: AuthRequirement =
    typeof declared === 'string' || Array.isArray(declared)
      ? { methods: declared as AuthMethod | readonly AuthMethod[] }
      : ((declared as AuthRequirement | undefined) ?? {});
  const listed = requirement.methods === undefined ? hostDefault : toList(requirement.methods);
  if (listed.length === 0) return null;
  const methods = unique(listed.filter((m): m is Exclude<AuthMethod, 'public'> => m !== 'public'));
  return {
    methods,
    anonymous: listed.includes('public'),
    scopes: requirement.scopes ?? [],
    roles: requirement.roles ?? [],
    ...(requirement.allow ? { allow: requirement.allow } : {}),
  };
}

/**
 * Checks the scopes and roles a plan requires. Throws a 403 naming what is missing (the names of scopes are not
 * secret: they are in the OpenAPI document).
 */
export function checkGrants(plan: AuthPlan, identity: AuthIdentity): void {
  const missing = plan.scopes.filter((scope) => !identity.scopes.includes(scope));
  if (missing.length > 0) throw forbidden(`missing scope(s): ${missing.join(', ')}`);
  if (plan.roles.length > 0 && !plan.roles.some((role) => identity.roles.includes(role))) {
    throw forbidden(`requires one of the roles: ${plan.roles.join(', ')}`);
  }
}

/** Runs a plan's predicate, if any; false (or a throw that is not a GantryError) answers 403. */
export async function checkPredicate(
  plan: AuthPlan,
  identity: AuthIdentity | undefined,
  input: AuthInput,
): Promise<void> {
  if (!plan.allow) return;
  if (identity === undefined) throw forbidden('this request needs a caller to authorise');
  let allowed: boolean;
  try {
    allowed = await plan.allow(identity, input);
  } catch (error) {
    if (error instanceof GantryError) throw error;
    throw forbidden('the authorisation rule failed', error);
  }
  if (allowed !== true) throw forbidden('the authorisation rule refused this request');
}

/** A 403: the caller is known but may not do this. */
export function forbidden(detail: string, cause?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_AUTH_FORBIDDEN', detail, cause === undefined ? {} : { cause });
}

function toList(methods: AuthMethod | readonly AuthMethod[]): readonly AuthMethod[] {
  return typeof methods === 'string' ? [methods] : methods;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
