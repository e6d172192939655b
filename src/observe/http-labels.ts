import type { FastifyRequest } from 'fastify';
import { requestRoute } from '../http/server.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route label of requests that matched no route (404s): raw paths never become label values. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The method of a request as a label: one of the standard methods, or `OTHER`. */
export function methodLabel(request: FastifyRequest): string {
  return METHODS.has(request.method) ? request.method : 'OTHER';
}

/** The route template a request matched (`/customers/:id`), or {@link UNMATCHED_ROUTE}. */
export function routeLabel(request: FastifyRequest): string {
  return requestRoute(request) ?? UNMATCHED_ROUTE;
}

/** True when `url` (a request URL, query included) is under one of `prefixes`. */
export function underAny(url: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (url.startsWith(prefix)) return true;
  return false;
}
