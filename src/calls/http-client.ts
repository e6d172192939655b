import { SpanKind } from '@opentelemetry/api';
import type { TSchema } from 'typebox';
import type { Dispatcher } from 'undici';
import { GantryError, type WireError } from '../errors/gantry-error.ts';
import { type FieldProblem, validatorFor } from '../schema/validate.ts';
import type { HttpMethod, HttpSchemas } from '../service/http-event.ts';
import type { AnyService, HttpEventDef } from '../service/service.ts';
import { recordTimedWork } from '../tracking/work-spans.ts';
import type { CallContext } from './call-context.ts';
import type { CallPolicy } from './config.ts';
import type { TargetPolicy } from './policy.ts';
import type { Endpoint, InstancePicker } from './resolver.ts';
import type { ApiOf, CallAnswer, CallOptions, ServiceClient } from './types.ts';

/** One HTTP request as a sender sends it: the path already filled in. */
export interface OutboundRequest {
  method: HttpMethod;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** One HTTP response as a sender hands it back, its body still text. */
export interface InboundResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Sends one request to one base URL within `timeoutMs`, or rejects with a coded transport error. */
export type HttpSender = (
  base: string,
  request: OutboundRequest,
  attempt: { signal: AbortSignal; timeoutMs: number },
) => Promise<InboundResponse>;

/** What a route call needs beside its input: how to reach the target and the policy around it. */
export interface RouteCallDeps {
  target: string;
  picker: InstancePicker;
  send: HttpSender;
  /** The target's policy and the settings of one operation, with the call's own timeout over them. */
  policyOf: (operation: string, timeout: number | undefined) => { policy: TargetPolicy; settings: CallPolicy };
  headersFor: (ctx: CallContext, target: string) => Promise<Record<string, string>>;
}

/** Checks one value; returns its problems, or an empty list when it is valid. */
export type Check = (value: unknown) => FieldProblem[];

/** One route as the client calls it: its method and path template, and the checks of its input and answers. */
export interface RouteSpec {
  method: HttpMethod;
  path: string;
  /** The operation's name in config (`calls:`) and errors: `GET /customers/:id`, or an OpenAPI operationId. */
  operation: string;
  params?: Check;
  query?: Check;
  body?: Check;
  /** The declared statuses; `null` for a status with no body. */
  responses: Record<number, Check | null>;
}

/** The route spec of an HTTP event of a Gantry service, checked with the same schemas the service validates with. */
export function routeSpec(method: HttpMethod, path: string, schemas: HttpSchemas): RouteSpec {
  const responses: Record<number, Check | null> = {};
  for (const [status, schema] of Object.entries(responseMap(schemas.response))) {
    responses[Number(status)] = schema ? schemaCheck(schema) : null;
  }
  return {
    method,
    path,
    operation: `${method} ${path}`,
    ...(schemas.params ? { params: schemaCheck(schemas.params) } : {}),
    ...(schemas.query ? { query: schemaCheck(schemas.query) } : {}),
    ...(schemas.body ? { body: schemaCheck(schemas.body) } : {}),
    responses,
  };
}

function schemaCheck(schema: TSchema): Check {
  const validator = validatorFor(schema);
  return (value) => (validator.check(value) ? [] : validator.problems(value));
}

/** The input of one call, typed or not, as the runtime reads it. */
export interface LooseInput extends CallOptions {
  params?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
}

/**
 * Calls one route: checks the input against the route's schemas, fills the path, sends through the target's policy,
 * and turns the answer into a {@link CallAnswer}: a declared status with its body checked against that status's
 * schema, or a coded error for anything else.
 */
export async function callRoute(
  deps: RouteCallDeps,
  ctx: CallContext,
  route: RouteSpec,
  input: LooseInput = {},
): Promise<CallAnswer<number, unknown>> {
  checkPart(route, 'params', route.params, input.params);
  checkPart(route, 'query', route.query, input.query ?? {});
  checkPart(route, 'body', route.body, input.body);
  const { operation, responses } = route;
  const path = fillPath(route.path, input.params ?? {}) + queryString(input.query);
  const idempotent =
    input.idempotent ?? (route.method === 'GET' || route.method === 'PUT' || route.method === 'DELETE');
  const { policy, settings } = deps.policyOf(operation, input.timeout);
  return policy
    .execute(
      async (attempt) => {
        const endpoint: Endpoint = await deps.picker.pick();
        const startMs = Date.now();
        let status: number | undefined;
        let failure: unknown;
        let sent: Record<string, string> | undefined;
        try {
          sent = await deps.headersFor(ctx, deps.target);
          const headers: Record<string, string> = {
            ...sent,
            ...(ctx.deadline === undefined ? {} : { 'x-gantry-deadline': String(Math.max(1, attempt.timeoutMs)) }),
            ...input.headers,
          };
          if (input.body !== undefined) headers['content-type'] = 'application/json';
          const response = await deps.send(
            endpoint.url,
            {
              method: route.method,
              path,
              headers,
              ...(input.body !== undefined ? { body: JSON.stringify(input.body) } : {}),
            },
            attempt,
          );
          status = response.status;
          return toAnswer(deps.target, operation, response, responses);
        } catch (error) {
          failure = error;
          throw error;
        } finally {
          endpoint.release();
          // The client span of this attempt, under the id its traceparent named (`00-<trace>-<span>-<flags>`): the
          // parent the target's server span names.
          const error = failure ?? (status !== undefined && status >= 500 ? new Error(`HTTP ${status}`) : undefined);
          recordTimedWork(ctx.tracking, {
            name: `${route.method} ${deps.target} ${route.path}`,
            kind: SpanKind.CLIENT,
            startMs,
            ...(sent?.traceparent === undefined ? {} : { spanId: sent.traceparent.slice(36, 52) }),
            attributes: {
              'http.request.method': route.method,
              'url.template': route.path,
              'server.address': endpoint.url,
              'gantry.call.target': deps.target,
              ...(status === undefined ? {} : { 'http.response.status_code': status }),
              ...(attempt.attempt > 1 ? { 'http.request.resend_count': attempt.attempt - 1 } : {}),
            },
            ...(error === undefined ? {} : { error }),
          });
        }
      },
      {
        policy: settings,
        idempotent,
        ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}),
        ...(input.signal ? { signal: input.signal } : { signal: ctx.signal }),
        ...(input.fallback ? { fallback: input.fallback as (error: GantryError) => CallAnswer<number, unknown> } : {}),
      },
    )
    .catch((error: unknown) => {
      // A declared 5xx is an answer the breaker counted as a failure: hand it back as the typed result it is.
      const declared = (error as { details?: { answer?: CallAnswer<number, unknown> } }).details?.answer;
      if (error instanceof GantryError && declared && declared.status in responses) return declared;
      throw error;
    });
}

/**
 * A typed client of a Gantry service: each method finds the route in the service's definition (so its schemas are
 * the ones the target validates with) and calls it.
 */
export function serviceClient<S extends AnyService>(
  service: S,
  ctx: CallContext,
  deps: RouteCallDeps,
): ServiceClient<ApiOf<S>> {
  const routes = new Map<string, HttpEventDef>();
  for (const event of service.events) if (event.kind === 'http') routes.set(event.name, event);
  const specs = new Map<string, RouteSpec>();
  const call = (method: HttpMethod) => (path: string, input?: LooseInput) => {
    const route = routes.get(`${method} ${path}`);
    if (!route) {
      return Promise.reject(
        new GantryError(
          'GANTRY_ERR_CALL_UNKNOWN_TARGET',
          `service '${service.info.name}' has no route ${method} ${path}`,
        ),
      );
    }
    let spec = specs.get(route.name);
    if (!spec) {
      spec = routeSpec(method, path, route.schemas);
      specs.set(route.name, spec);
    }
    return callRoute(deps, ctx, spec, input);
  };
  return {
    get: call('GET'),
    post: call('POST'),
    put: call('PUT'),
    patch: call('PATCH'),
    delete: call('DELETE'),
  } as unknown as ServiceClient<ApiOf<S>>;
}

/** Sends through an undici dispatcher (an `Agent` keeping one keep-alive pool per origin). */
export function undiciSender(dispatcher: Dispatcher): HttpSender {
  return async (base, request, attempt) => {
    const url = new URL(base);
    const prefix = url.pathname.replace(/\/$/, '');
    try {
      const response = await dispatcher.request({
        origin: url.origin,
        path: `${prefix}${request.path}`,
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
        signal: attempt.signal,
        headersTimeout: attempt.timeoutMs,
        bodyTimeout: attempt.timeoutMs,
      });
      const text = await response.body.text();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (typeof value === 'string') headers[name] = value;
        else if (Array.isArray(value)) headers[name] = value.join(', ');
      }
      return { status: response.statusCode, headers, text };
    } catch (error) {
      throw transportError(base, error);
    }
  };
}

/** Maps what undici threw to a coded error; a refused connection is marked as never sent (safe to retry). */
export function transportError(base: string, error: unknown): GantryError {
  if (error instanceof GantryError) return error;
  const code = errorCode(error);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new GantryError('GANTRY_ERR_CALL_TIMEOUT', `${base} did not answer in time (${code})`, { cause: error });
  }
  const notSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
  return new GantryError(
    'GANTRY_ERR_CALL_UNREACHABLE',
    `cannot reach ${base}: ${code ?? (error instanceof Error ? error.message : String(error))}`,
    { cause: error, details: { notSent } },
  );
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET') return code;
    const errors = (current as { errors?: unknown[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) current = errors[0];
    else current = (current as { cause?: unknown }).cause;
  }
  return (error as { code?: string }).code;
}

/** The declared responses of a route, by status. */
export function responseMap(response: HttpSchemas['response']): Record<number, TSchema | null> {
  if (response === undefined) return { 204: null };
  const keys = Object.keys(response);
  if (keys.length > 0 && keys.every((key) => /^\d{3}$/.test(key))) return response as Record<number, TSchema | null>;
  return { 200: response as TSchema };
}

/**
 * Turns a response into an answer. A declared status is checked against its schema; 5xx throws (so the breaker and
 * retries see it) carrying the answer, which the caller gets back when the 5xx was declared; any other undeclared
 * status throws the error its problem document names (`code`), or `GANTRY_ERR_CALL_UPSTREAM`.
 */
export function toAnswer(
  target: string,
  operation: string,
  response: InboundResponse,
  responses: Record<number, Check | null>,
): CallAnswer<number, unknown> {
  const body = parseBody(response);
  const status = response.status;
  const declared = status in responses;
  const answer = {
    status,
    ok: status >= 200 && status < 300,
    body: declared && responses[status] === null ? undefined : body,
    headers: response.headers,
  } as CallAnswer<number, unknown>;
  if (declared) {
    const check = responses[status];
    const problems = check ? check(body) : [];
    if (problems.length > 0) {
      throw new GantryError(
        'GANTRY_ERR_CALL_INVALID_RESPONSE',
        `${target} answered ${operation} with a ${status} body that does not match its schema`,
        { details: { target, operation, status, problems } },
      );
    }
    if (status < 500) return answer;
  }
  if (status >= 500) {
    throw new GantryError('GANTRY_ERR_CALL_UPSTREAM', `${target} answered ${operation} with ${status}`, {
      status: 502,
      details: { target, operation, upstreamStatus: status, ...(declared ? { answer } : {}), problem: body },
    });
  }
  const problem = body as Partial<WireError> | undefined;
  if (problem && typeof problem === 'object' && typeof problem.code === 'string') {
    const rebuilt = GantryError.fromWire({
      code: problem.code,
      message: `${target}: ${typeof problem.message === 'string' ? problem.message : ((problem as { detail?: string }).detail ?? problem.code)}`,
      retryable: false,
      details: { target, operation, upstreamStatus: status, problem },
    });
    throw rebuilt;
  }
  throw new GantryError('GANTRY_ERR_CALL_UPSTREAM', `${target} answered ${operation} with an undeclared ${status}`, {
    status: 502,
    retryable: false,
    details: { target, operation, upstreamStatus: status, problem: body },
  });
}

function parseBody(response: InboundResponse): unknown {
  if (response.text === '') return undefined;
  const type = response.headers['content-type'] ?? '';
  if (/\bjson\b/.test(type)) {
    try {
      return JSON.parse(response.text);
    } catch {
      return response.text;
    }
  }
  return response.text;
}

function checkPart(route: RouteSpec, part: string, check: Check | undefined, value: unknown): void {
  if (!check) return;
  const found = check(value);
  if (found.length === 0) return;
  const problems = found.map((p) => ({ path: `/${part}${p.path === '/' ? '' : p.path}`, message: p.message }));
  throw new GantryError(
    'GANTRY_ERR_CALL_INVALID_INPUT',
    `the ${part} of ${route.operation} is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
    { details: problems },
  );
}

/** `/customers/:id` with `{ id: 'a b' }` → `/customers/a%20b`. */
export function fillPath(path: string, params: Record<string, unknown>): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) {
      throw new GantryError('GANTRY_ERR_CALL_INVALID_INPUT', `path parameter '${name}' of ${path} is missing`);
    }
    return encodeURIComponent(String(value));
  });
}

function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) search.append(name, String(item));
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** What an in-process sender needs: Fastify's `inject` (no socket). */
export type InjectFn = (options: {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}) => Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }>;

/** Sends to a service hosted in this same process through the host's router, with no socket. */
export function injectSender(inject: InjectFn): HttpSender {
  return async (_base, request) => {
    const response = await inject({
      method: request.method,
      url: request.path,
      headers: request.headers,
      ...(request.body !== undefined ? { payload: request.body } : {}),
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    return { status: response.statusCode, headers, text: response.body };
  };
}
