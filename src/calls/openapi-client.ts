import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { GantryError } from '../errors/gantry-error.ts';
import type { HttpMethod } from '../service/http-event.ts';
import type { CallContext } from './call-context.ts';
import { type Check, callRoute, type RouteCallDeps, type RouteSpec } from './http-client.ts';
import type { OpenApiAnswer, OpenApiCallInput, OpenApiClient } from './types.ts';

type AddFormats = (ajv: Ajv2020) => unknown;
const addFormats: AddFormats =
  (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);

/** The parts of an OpenAPI 3.x document the client reads. */
export interface OpenApiSource {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components?: Record<string, unknown>;
}

/** A non-Gantry HTTP API known from its OpenAPI document, to call with `ctx.client(api)`. */
export interface HttpApi {
  readonly kind: 'openapi';
  /** The client's name: its key under `host.calls.clients` (where its URL and policy are). */
  readonly name: string;
  readonly operations: ReadonlyMap<string, RouteSpec>;
}

const METHODS: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const DOCUMENT_ID = 'gantry:openapi';

/**
 * Describes a non-Gantry HTTP API from its OpenAPI 3.0 or 3.1 document: each operation with an `operationId`
 * becomes callable, its path, query and JSON body checked before sending and each declared response's JSON body
 * checked after (schemas compiled once here, `$ref`s resolved within the document). Types are loose (`unknown`
 * bodies): the checks happen at run time.
 *
 * @example
 * export const payments = httpApi('payments', JSON.parse(readFileSync('payments.openapi.json', 'utf8')));
 * const answer = await ctx.client(payments).call('createCharge', { body: { amount: 100 } });
 */
export function httpApi(name: string, document: OpenApiSource): HttpApi {
  if (typeof document.openapi !== 'string' || !/^3\./.test(document.openapi)) {
    throw new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `the document of '${name}' is not OpenAPI 3.x`);
  }
  const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: false });
  addFormats(ajv);
  // Added whole so that `$ref: '#/components/...'` inside any schema resolves against the document.
  ajv.addSchema({ ...(document as unknown as Record<string, unknown>), $id: DOCUMENT_ID });
  const check = (pointer: string[]): Check => {
    const validate = ajv.compile({ $ref: `${DOCUMENT_ID}#/${pointer.map(escapePointer).join('/')}` });
    return (value) => (validate(value) ? [] : problemsOf(validate.errors ?? []));
  };
  const operations = new Map<string, RouteSpec>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method.toLowerCase()] as OpenApiOperation | undefined;
      if (!operation?.operationId) continue;
      const at = ['paths', path, method.toLowerCase()];
      operations.set(operation.operationId, {
        method,
        path: path.replace(/\{([^}]+)\}/g, ':$1'),
        operation: operation.operationId,
        ...parameterChecks(operation, [...((item.parameters as OpenApiParameter[] | undefined) ?? [])]),
        ...(jsonSchemaOf(operation.requestBody)
          ? { body: check([...at, 'requestBody', 'content', 'application/json', 'schema']) }
          : {}),
        responses: Object.fromEntries(
          Object.entries(operation.responses ?? {}).flatMap(([status, response]) => {
            if (!/^\d{3}$/.test(status)) return [];
            return [
              [
                Number(status),
                jsonSchemaOf(response)
                  ? check([...at, 'responses', status, 'content', 'application/json', 'schema'])
                  : null,
              ],
            ];
          }),
        ),
      });
    }
  }
  return { kind: 'openapi', name, operations };
}

/** A client of an {@link HttpApi} bound to one calling event. */
export function openApiClient(api: HttpApi, ctx: CallContext, deps: RouteCallDeps): OpenApiClient {
  return {
    operations: () => [...api.operations.keys()],
    call: (operationId: string, input?: OpenApiCallInput): Promise<OpenApiAnswer> => {
      const spec = api.operations.get(operationId);
      if (!spec) {
        return Promise.reject(
          new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `the API '${api.name}' has no operation '${operationId}'`),
        );
      }
      return callRoute(deps, ctx, spec, input);
    },
  };
}

interface OpenApiParameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Record<string, unknown>;
}

interface OpenApiOperation {
  operationId?: string;
  parameters?: OpenApiParameter[];
  requestBody?: unknown;
  responses?: Record<string, unknown>;
}

/** Path and query parameters as two object schemas, compiled on their own (parameters may not be `$ref`s here). */
function parameterChecks(operation: OpenApiOperation, shared: OpenApiParameter[]): Pick<RouteSpec, 'params' | 'query'> {
  const out: Pick<RouteSpec, 'params' | 'query'> = {};
  const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true });
  addFormats(ajv);
  for (const place of ['path', 'query'] as const) {
    const list = [...shared, ...(operation.parameters ?? [])].filter((p) => p.in === place);
    if (list.length === 0) continue;
    const validate = ajv.compile({
      type: 'object',
      properties: Object.fromEntries(list.map((p) => [p.name, p.schema ?? {}])),
      required: list.filter((p) => p.required || place === 'path').map((p) => p.name),
    });
    // Checked on a copy: `coerceTypes` (numbers given as strings are fine in a URL) must not change the caller's value.
    const check: Check = (value) => {
      const copy = structuredClone(value ?? {});
      return validate(copy) ? [] : problemsOf(validate.errors ?? []);
    };
    if (place === 'path') out.params = check;
    else out.query = check;
  }
  return out;
}

function jsonSchemaOf(part: unknown): boolean {
  const content = (part as { content?: Record<string, { schema?: unknown }> } | undefined)?.content;
  return content?.['application/json']?.schema !== undefined;
}

function problemsOf(errors: ErrorObject[]): { path: string; message: string }[] {
  return errors.map((error) => {
    const missing = (error.params as { missingProperty?: string }).missingProperty;
    return missing
      ? { path: `${error.instancePath}/${missing}`, message: 'is required' }
      : { path: error.instancePath === '' ? '/' : error.instancePath, message: error.message ?? 'is invalid' };
  });
}

function escapePointer(segment: string): string {
  return encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));
}
