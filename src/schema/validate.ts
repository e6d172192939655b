import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/** One failing field of a validation: a JSON pointer into the value and what is wrong there. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** A compiled check of one schema, reused for every value it sees. */
export interface Validator<T> {
  check(value: unknown): value is T;
  problems(value: unknown): FieldProblem[];
}

const cache = new WeakMap<TSchema, Validator<unknown>>();

/** Compiles (once per schema object) a validator that lists every failing field. */
export function validatorFor<T>(schema: TSchema): Validator<T> {
  const cached = cache.get(schema);
  if (cached) return cached as Validator<T>;
  const compiled = Compile(schema);
  const validator: Validator<T> = {
    check: (value: unknown): value is T => compiled.Check(value),
    problems: (value: unknown) =>
      [...compiled.Errors(value)].flatMap((error) => {
        // A "required" error names several properties at once; report each missing field on its own.
        const missing = (error.params as { requiredProperties?: string[] } | undefined)?.requiredProperties;
        if (missing && missing.length > 0) {
          return missing.map((name) => ({ path: `${error.instancePath}/${name}`, message: 'is required' }));
        }
        return [{ path: error.instancePath === '' ? '/' : error.instancePath, message: error.message }];
      }),
  };
  cache.set(schema, validator as Validator<unknown>);
  return validator;
}
