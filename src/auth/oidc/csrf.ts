import { timingSafeEqual } from 'node:crypto';
import { GantryError } from '../../errors/gantry-error.ts';
import type { AuthRequest } from '../security.ts';

/** The header in which the web app echoes its session's CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';

/** Methods that change state: the ones a cross-site form or script must not be able to send with the cookie. */
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** True for the methods that need the CSRF check. */
export function isUnsafeMethod(method: string): boolean {
  return UNSAFE.has(method);
}

/**
 * Checks a state-changing request made with a session: it must come from this site (`Sec-Fetch-Site: same-origin`
 * when the browser sends it, `Origin` equal to the app's origin when sent) and carry the session's token in
 * `x-csrf-token`. SameSite=Lax already keeps the cookie off cross-site POSTs in current browsers; the token covers
 * older ones and same-site attackers (a sibling subdomain), the origin checks refuse early what is plainly foreign.
 *
 * @param expected The session's token.
 * @param origin The app's own origin (`https://app.example.com`).
 * @throws GantryError 403 `GANTRY_ERR_AUTH_CSRF`.
 */
export function checkCsrf(request: AuthRequest, expected: string, origin: string): void {
  const site = single(request.headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin') {
    throw refused(`a ${request.method} from another site (Sec-Fetch-Site: ${site}) is refused`);
  }
  const from = single(request.headers.origin);
  if (from !== undefined && from !== origin) {
    throw refused(`a ${request.method} from another origin is refused`);
  }
  const sent = single(request.headers[CSRF_HEADER]);
  if (sent === undefined || sent === '') throw refused(`this ${request.method} needs the session's ${CSRF_HEADER}`);
  if (!sameToken(sent, expected)) throw refused(`the ${CSRF_HEADER} does not match the session`);
}

function sameToken(sent: string, expected: string): boolean {
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function refused(detail: string): GantryError {
  return new GantryError('GANTRY_ERR_AUTH_CSRF', detail);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
