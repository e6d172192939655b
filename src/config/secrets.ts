import type { TSchema } from 'typebox';
import { isSecretSchema } from '../schema/index.ts';
import { HostConfigSchema } from './host-config.ts';
import type { ResolvedConfig } from './load.ts';

/** Secrets shorter than this are not scrubbed from log lines: replacing every `eu` or `42` would garble them. */
export const MIN_SCRUBBED_LENGTH = 6;

const SECRET_NAMES = /pass(word)?|secret|token|api_?key|credential/i;

/**
 * Every secret value of a resolved config, for the logger to scrub from whatever a handler writes (an error message
 * that quotes a token, settings logged whole): settings and host settings marked `secret()`, values under
 * secret-sounding keys in driver options, and the passwords of URLs (database, bus, Redis), in raw and decoded form.
 *
 * @param settingsSchemas The settings schema of each service, by name.
 */
export function secretValues(
  resolved: ResolvedConfig,
  settingsSchemas: Readonly<Record<string, TSchema | undefined>>,
): string[] {
  const found = new Set<string>();
  collect(resolved.host, HostConfigSchema, found);
  for (const [name, config] of Object.entries(resolved.services)) {
    collect(config.settings, settingsSchemas[name], found);
    collect(config.drivers, undefined, found);
  }
  return [...found].filter((value) => value.length >= MIN_SCRUBBED_LENGTH).sort((a, b) => b.length - a.length);
}

function collect(value: unknown, schema: TSchema | undefined, found: Set<string>, secretByName = false): void {
  if (typeof value === 'string') {
    if (secretByName || (schema && isSecretSchema(schema))) found.add(value);
    for (const password of urlPasswords(value)) found.add(password);
    return;
  }
  if (Array.isArray(value)) {
    const items = (schema as { items?: TSchema } | undefined)?.items;
    for (const item of value) collect(item, items, found, secretByName);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const properties = (schema as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
  const whole = schema !== undefined && isSecretSchema(schema);
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    collect(child, properties[key], found, whole || SECRET_NAMES.test(key));
  }
}

function urlPasswords(value: string): string[] {
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:([^@\s]+)@/i.exec(value);
  if (!match?.[1]) return [];
  const raw = match[1];
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not percent-encoded text: the raw form is all there is.
  }
  return decoded === raw ? [raw] : [raw, decoded];
}
