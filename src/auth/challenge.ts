import { GantryError } from '../errors/gantry-error.ts';

/** The realm named in every `WWW-Authenticate` challenge. */
export const REALM = 'gantry';

/** What a 401 carries in its `details`: the challenges the server answers with in `WWW-Authenticate`. */
interface ChallengeDetails {
  challenges: readonly string[];
}

/**
 * A 401: no credential the event accepts was sent, or the one sent is not valid. The challenges become the
 * `WWW-Authenticate` header; the problem body never says more than `detail`.
 */
export function unauthenticated(detail: string, challenges: readonly string[], cause?: unknown): GantryError {
  const details: ChallengeDetails = { challenges };
  return new GantryError(
    'GANTRY_ERR_AUTH_UNAUTHENTICATED',
    detail,
    cause === undefined ? { details } : { details, cause },
  );
}

/** The `WWW-Authenticate` challenges of a 401 made by {@link unauthenticated}; empty for any other error. */
export function challengesOf(error: GantryError): readonly string[] {
  if (error.code !== 'GANTRY_ERR_AUTH_UNAUTHENTICATED') return [];
  const challenges = (error.details as Partial<ChallengeDetails> | undefined)?.challenges;
  return Array.isArray(challenges) ? challenges : [];
}

/**
 * One challenge (RFC 9110 §11.6.1): a scheme and quoted parameters, with quotes and backslashes escaped so an error
 * description can never break the header.
 */
export function challenge(scheme: string, params: Readonly<Record<string, string | undefined>> = {}): string {
  const parts = [`realm="${REALM}"`];
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) parts.push(`${name}="${value.replace(/[\\"]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`);
  }
  return `${scheme} ${parts.join(', ')}`;
}
