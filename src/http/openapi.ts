import type { TSchema } from 'typebox';
import type { CredentialMethod } from '../auth/identity.ts';
import { resolvePlan } from '../auth/rules.ts';
import { operationSecurity, SECURITY_SCHEME_NAMES, securityScheme } from '../auth/security.ts';
import type { HttpSchemas } from '../service/http-event.ts';
import type { AnyService, HttpEventDef } from '../service/service.ts';
import { ProblemSchema } from './problem.ts';
import { isResponseMap } from './server.ts';

/** An OpenAPI 3.1 document, as plain JSON. */
export type OpenApiDocument = Record<string, unknown> & {
  openapi: '3.1.0';
  paths: Record<string, Record<string, unknown>>;
};

/** Options of {@link buildOpenApi}. */
export interface OpenApiOptions {
  title: string;
  version: string;
  description?: string;
  /**
   * The security of a running host: the schemes it configures and each operation's alternatives (its plan, with the
   * host default applied). Without it, operations document only the auth they declare themselves.
   */
  security?: OpenApiSecurity;
}

/** What a running host tells the OpenAPI builder about its security. */
export interface OpenApiSecurity {
  /** The security schemes of the methods the host configures, by name. */
  schemes: Record<string, Record<string, string>>;
  /** The `security` of one operation. */
  of: (service: string, event: HttpEventDef) => Record<string, string[]>[];
}

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: PROBLEM_REF } },
});

/**
 * Builds one OpenAPI 3.1 document for every HTTP event of the hosted services (hopeit's "compose API"): a tag per
 * service, an operationId per event, the schemas of each part and every response, errors included.
 */
export function buildOpenApi(services: readonly AnyService[], options: OpenApiOptions): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemes: Record<string, Record<string, string>> = {};
  const operationIds = new Set<string>();
  for (const svc of services) {
    for (const event of svc.events) {
      if (event.kind !== 'http' || event.schemas.hidden) continue;
      const path = event.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      let operationId = event.schemas.operationId ?? defaultOperationId(svc.info.name, event);
      // Two services may define the same route shape; keep ids unique, as the spec requires.
      for (let n = 2; operationIds.has(operationId); n++) operationId = `${operationId}${n}`;
      operationIds.add(operationId);
      paths[path] ??= {};
      const op = operation(svc, event, operationId);
      const security = options.security ? options.security.of(svc.info.name, event) : declaredSecurity(event);
      addSecurity(op, security, event, schemes);
      (paths[path] as Record<string, unknown>)[event.method.toLowerCase()] = op;
    }
  }
  // The host's schemes carry its own names (API key header, session cookie): they win over the defaults that
  // operations filled in.
  Object.assign(schemes, options.security?.schemes);
  const document: OpenApiDocument = {
    openapi: '3.1.0',
    info: {
      title: options.title,
      version: options.version,
      ...(options.description ? { description: options.description } : {}),
    },
    tags: services.map((svc) => ({
      name: svc.info.name,
      description: svc.description ?? `${svc.info.name} ${svc.info.version}`,
    })),
    paths,
    components: {
      schemas: { Problem: jsonSchema(ProblemSchema) },
      ...(Object.keys(schemes).length > 0 ? { securitySchemes: schemes } : {}),
    },
  };
  return document;
}

/** The security of an event from its own declaration alone (no host default known, as in `gantry openapi`). */
function declaredSecurity(event: HttpEventDef): Record<string, string[]>[] {
  const plan = resolvePlan(event.schemas.auth, []);
  return plan === null ? [] : operationSecurity(plan);
}

/**
 * Writes an operation's `security` (`[]` marks it public), adds the schemes it names that the host did not give, and
 * documents its 401, 403 and 429 answers.
 */
function addSecurity(
  op: Record<string, unknown>,
  security: Record<string, string[]>[],
  event: HttpEventDef,
  schemes: Record<string, Record<string, string>>,
): void {
  op.security = security;
  const responses = op.responses as Record<string, unknown>;
  const named = security.flatMap((alternative) => Object.keys(alternative));
  for (const name of named) {
    const method = (Object.keys(SECURITY_SCHEME_NAMES) as CredentialMethod[]).find(
      (m) => SECURITY_SCHEME_NAMES[m] === name,
    );
    if (method) schemes[name] ??= securityScheme(method);
  }
  if (named.length > 0) {
    responses['401'] ??= problemResponse('No valid credential; `WWW-Authenticate` names the accepted schemes');
    responses['403'] ??= problemResponse('The caller lacks a required scope or role, or a rule refused the request');
  }
  if (event.schemas.rateLimit)
    responses['429'] ??= problemResponse('Too many requests; `Retry-After` says when to retry');
}

/** `GET /customers/:id` of `customers` → `customers.getCustomersById`. */
function defaultOperationId(service: string, event: HttpEventDef): string {
  const words = event.path
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `by-${part.slice(1)}` : part))
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  const name = words.map((word) => word[0]?.toUpperCase() + word.slice(1)).join('');
  return `${service}.${event.method.toLowerCase()}${name}`;
}

function operation(svc: AnyService, event: HttpEventDef, operationId: string): Record<string, unknown> {
  const { schemas } = event;
  const op: Record<string, unknown> = {
    operationId,
    tags: [svc.info.name, ...(schemas.tags ?? [])],
    summary: schemas.summary ?? event.name,
  };
  if (schemas.description) op.description = schemas.description;
  const parameters = [
    ...parametersOf(schemas.params, 'path'),
    ...parametersOf(schemas.query, 'query'),
    ...parametersOf(schemas.headers, 'header'),
  ];
  // Path parameters without a schema are still parameters of the path.
  for (const match of event.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    const name = match[1] as string;
    if (!parameters.some((p) => p.in === 'path' && p.name === name)) {
      parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    }
  }
  if (parameters.length > 0) op.parameters = parameters;
  if (schemas.body)
    op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(schemas.body) } } };
  op.responses = responsesOf(schemas, event);
  return op;
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: unknown;
  description?: string;
}

function parametersOf(schema: TSchema | undefined, where: Parameter['in']): Parameter[] {
  if (!schema) return [];
  const properties = (schema as { properties?: Record<string, TSchema> }).properties ?? {};
  const required = new Set((schema as { required?: string[] }).required ?? []);
  return Object.entries(properties).map(([name, property]) => {
    const parameter: Parameter = {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      schema: jsonSchema(property),
    };
    const description = (property as { description?: string }).description;
    if (description) parameter.description = description;
    return parameter;
  });
}

function responsesOf(schemas: HttpSchemas, event: HttpEventDef): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  const declared =
    schemas.response === undefined
      ? { 204: null }
      : isResponseMap(schemas.response)
        ? schemas.response
        : { 200: schemas.response };
  for (const [status, schema] of Object.entries(declared)) {
    const description = STATUS_TEXT[Number(status)] ?? `Status ${status}`;
    if (schema === null) responses[status] = { description };
    else if (Number(status) >= 400) responses[status] = problemResponse(description);
    else responses[status] = { description, content: { 'application/json': { schema: jsonSchema(schema) } } };
  }
  const hasInput = Boolean(schemas.params || schemas.query || schemas.headers || schemas.body);
  const errors: [number, string, boolean][] = [
    [400, 'The request is malformed or fails validation; `errors` lists every failing field', hasInput],
    [404, 'No such resource', event.path.includes(':')],
    [413, 'The request body is larger than the limit', Boolean(schemas.body)],
    [415, 'The request body is not JSON', Boolean(schemas.body)],
    [500, 'An internal error; the request id identifies it in the logs', true],
    [503, 'The service is starting or shutting down', true],
    [504, 'The event did not finish within its timeout', true],
  ];
  for (const [status, description, applies] of errors) {
    if (applies && responses[status] === undefined) responses[status] = problemResponse(description);
  }
  return responses;
}

/** A clean JSON copy of a schema: no `$id`s of shared schemas inlined twice, no Gantry-internal keywords. */
function jsonSchema(schema: TSchema): unknown {
  return JSON.parse(
    JSON.stringify(schema, (key, value: unknown) => (key === '$id' || key.startsWith('x-gantry-') ? undefined : value)),
  );
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  422: 'Unprocessable content',
};
