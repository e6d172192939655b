import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GantryError } from '../errors/gantry-error.ts';
import { forbidden } from './rules.ts';
import type { HostSecurity } from './security.ts';

/** Where a Gantry server keeps its host's security, for guards on routes that plugins add. */
const SECURITY = Symbol('gantry.security');

/**
 * Makes a host's security reachable from `requireRole` and from host plugins (the browser login) on the routes of
 * `app`, and checks, once every route is built, that events accepting sessions have a login to open them.
 */
export function attachSecurity(app: FastifyInstance, security: HostSecurity): void {
  app.decorate(SECURITY, security);
  app.addHook('onReady', async () => security.checkSessions());
}

/** The host security of a Gantry server, or undefined for a server outside a host. */
export function securityOf(app: FastifyInstance): HostSecurity | undefined {
  return (app as unknown as Record<symbol, HostSecurity | undefined>)[SECURITY];
}

/** A Fastify hook that lets a request through or throws the error to answer. */
export type RouteGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * A guard for admin routes that host plugins add (`/metrics`, `/_gantry`, job and stream admin): in prod (or with
 * `GANTRY_ADMIN_PROTECT=true`) the caller must present a credential of any method the host configures (a browser
 * login's session included, with its roles from the ID token) and hold `role`; elsewhere the route stays open, so a laptop needs no credentials to look at its own metrics.
 * Use it as the route's `onRequest` hook.
 *
 * @example
 * api.routes((app) => app.get('/metrics', { onRequest: requireRole('ops') }, async () => registry.metrics()));
 */
export function requireRole(role: string): RouteGuard {
  return async (request) => {
    const security = securityOf(request.server);
    if (!security) {
      // Fail closed: a route outside a Gantry host has no way to check anyone.
      throw new GantryError(
        'GANTRY_ERR_AUTH_MISCONFIGURED',
        'requireRole is used on a server that has no host security',
      );
    }
    const plan = security.adminPlan(role);
    if (plan === null) return;
    if (plan.methods.length === 0) {
      throw forbidden(`this endpoint requires the role '${role}', and the host configures no way to authenticate`);
    }
    await security.authenticate(plan, request);
  };
}
