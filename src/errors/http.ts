import { GantryError } from './gantry-error.ts';

/**
 * Shorthands that handlers throw to answer with an HTTP error. Each becomes an RFC 9457 problem+json response.
 *
 * @example
 * if (!row) throw notFound(`customer ${id} not found`);
 */
export function notFound(detail: string, details?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_HTTP_NOT_FOUND', detail, { details });
}

/** A 409: the request conflicts with the current state (a unique key taken, a stale version). */
export function conflict(detail: string, details?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_HTTP_CONFLICT', detail, { details });
}

/** A 400 raised by a handler after the schema checks passed (a rule the schema cannot state). */
export function badRequest(detail: string, details?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_HTTP_VALIDATION', detail, { details });
}
