import type { FastifyRequest } from 'fastify';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route label of requests that matched no route (404s): raw paths never become label values. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The method of a request as a label: one of the standard methods, or `OTHER`. */
export function methodLabel(request: FastifyRequest): string {
  return METHODS.has(request.method) ? request.method : 'OTHER';
}

// The metrics and tracing plugins each ask for the route of a request in their onResponse hooks, one right after the
// other; Fastify builds a new `routeOptions` object on every read, so the last answer is kept for the same request.
let lastRequest: FastifyRequest | undefined;
let lastRoute = UNMATCHED_ROUTE;

/** The route template a request matched (`/customers/:id`), or {@link UNMATCHED_ROUTE}. */
export function routeLabel(request: FastifyRequest): string {
  if (request !== lastRequest) {
    lastRoute = request.routeOptions.url ?? UNMATCHED_ROUTE;
    lastRequest = request;
  }
  return lastRoute;
}

/** True when `url` (a request URL, query included) is under one of `prefixes`. */
export function underAny(url: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (url.startsWith(prefix)) return true;
  return false;
}
