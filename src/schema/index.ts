import Type, { type Static, type TSchema } from 'typebox';

/**
 * TypeBox, the schema builder of Gantry: every schema is plain JSON Schema, and its TypeScript type comes from
 * `Static<typeof schema>` with no code generation.
 *
 * @example
 * const Customer = t.Object({ id: t.String({ format: 'uuid' }), name: t.String({ minLength: 1 }) });
 * type Customer = Static<typeof Customer>;
 */
export const t = Type;
export type { Static, TSchema };

/** The JSON Schema keyword that marks a setting as secret: masked in logs, errors and `gantry config`. */
export const SECRET_KEYWORD = 'x-gantry-secret';

/**
 * Marks a schema as holding a secret value.
 *
 * @example
 * settings: t.Object({ apiKey: secret(t.String({ minLength: 16 })) })
 */
export function secret<S extends TSchema>(schema: S): S {
  return { ...schema, [SECRET_KEYWORD]: true };
}

/** True when a schema was marked with {@link secret}. */
export function isSecretSchema(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as Record<string, unknown>)[SECRET_KEYWORD] === true;
}
