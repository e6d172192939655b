import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import type { FieldProblem } from '../schema/validate.ts';

// ajv-formats is CommonJS with a default export; under NodeNext its callable sits on `.default`.
type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats =
  (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

/**
 * The validator compiler of the HTTP server. Params, query and headers arrive as strings and are coerced to their
 * schema types; a JSON body is not, so `"age": "12"` for an integer is an error rather than a silent conversion.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<TSchema> {
  const coercing = makeAjv(true);
  const strict = makeAjv(false);
  // ajv's function goes to Fastify as it is, as with Fastify's own compiler: Fastify reads `errors` after a `false`
  // and hands them on as the error's `validation`, with the part in `validationContext`. A wrapper returning
  // `{ value }` or `{ error }` would cost a call and an object on every validated part of every request.
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}

/** Turns ajv errors of one part of the request into field problems with JSON pointers (`/body/email`). */
export function fieldProblems(part: string, errors: readonly ErrorObject[]): FieldProblem[] {
  return errors.map((error) => {
    const params = error.params as { missingProperty?: string; additionalProperty?: string };
    if (params.missingProperty !== undefined) {
      return { path: `/${part}${error.instancePath}/${params.missingProperty}`, message: 'is required' };
    }
    if (params.additionalProperty !== undefined) {
      return { path: `/${part}${error.instancePath}/${params.additionalProperty}`, message: 'is not allowed' };
    }
    return { path: `/${part}${error.instancePath}`, message: error.message ?? 'is invalid' };
  });
}

/**
 * A copy of a body schema in which every object that does not say otherwise refuses unknown properties, so a
 * misspelt field is reported instead of silently dropped.
 */
export function closeObjects(schema: TSchema): TSchema {
  if (typeof schema !== 'object' || schema === null) return schema;
  if (Array.isArray(schema)) return schema.map(closeObjects) as unknown as TSchema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = typeof value === 'object' && value !== null ? closeObjects(value as TSchema) : value;
  }
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out as TSchema;
}
