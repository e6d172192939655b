import type { TSchema } from 'typebox';
import { isSecretSchema } from '../schema/index.ts';

/** What a masked secret reads as. */
export const MASK = '[secret]';

/** A copy of `value` with every field its schema marks secret replaced by {@link MASK}. */
export function maskSecrets(value: unknown, schema: TSchema | undefined): unknown {
  if (schema && isSecretSchema(schema)) return value === undefined ? undefined : MASK;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return maskUrl(value);
  const properties = (schema as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_NAMES.test(key) ? MASK : maskSecrets(child, properties[key]);
  }
  return out;
}

const SECRET_NAMES = /pass(word)?|secret|token|api_?key|credential/i;

/** Hides the password of a URL (`postgres://user:pw@host` → `postgres://user:[secret]@host`). */
export function maskUrl(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):([^@\s]+)@/i, `$1:${MASK}@`);
}
