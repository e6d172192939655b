import type { Socket } from 'node:net';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from 'fastify';
import FindMyWay from 'find-my-way';
import type { TSchema } from 'typebox';
import { challengesOf } from '../auth/challenge.ts';
import { attachSecurity } from '../auth/guard.ts';
import type { AuthIdentity } from '../auth/identity.ts';
import type { AuthPlan } from '../auth/rules.ts';
import type { HostSecurity } from '../auth/security.ts';
import { errorCodes } from '../errors/codes.ts';
import { GantryError, toGantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';
import type { HttpInput, HttpMethod, HttpSchemas } from '../service/http-event.ts';
import { DEFAULT_STATUSES, isReply } from '../service/http-event.ts';
import type { HttpEventDef } from '../service/service.ts';
import { randomUuid } from '../tracking/ids.ts';
import { continueTracking, type Tracking } from '../tracking/trace-context.ts';
import { type EdgeOptions, eventRouteConfig, registerEdges, serverOptions } from './edges.ts';
import { PROBLEM_CONTENT_TYPE, toProblem } from './problem.ts';
import { closeObjects, createValidatorCompiler, fieldProblems } from './validation.ts';

/** One HTTP event to serve, with the service it belongs to. */
export interface HttpRoute<R = unknown> {
  owner: R;
  event: HttpEventDef;
}

/** The answer of a handler as the server sends it. */
export interface HttpAnswer {
  status: number;
  body: unknown;
  headers: Readonly<Record<string, string>>;
}

/** What the HTTP server needs from its host. */
export interface HttpServerOptions<R> {
  routes: HttpRoute<R>[];
  bodyLimitBytes: number;
  log: Logger;
  /** Runs the event of a route for one request; rejects with the error to answer. */
  run: (route: HttpRoute<R>, input: HttpInput<HttpSchemas>, call: HttpCall) => Promise<unknown>;
  /** True once the host is stopping: new requests are refused with 503 (health routes still answer). */
  isStopping: () => boolean;
  /** Routes the host adds beside the services' (health, OpenAPI, docs, plugins). */
  extraRoutes: (app: FastifyInstance) => void;
  /** Who may call each route; every route is public without it. */
  security?: HttpSecurity<R>;
  /** CORS, security headers, rate limits, size limits and timeouts; Fastify's defaults without it. */
  edges?: EdgeOptions;
}

/** What the server passes to `run` about one request beside its input. */
export interface HttpCall {
  tracking: Tracking;
  /** The verified caller; undefined for a public event or an anonymous call to an optional-auth one. */
  auth?: AuthIdentity;
}

/** The host's security as the server uses it. */
export interface HttpSecurity<R> {
  host: HostSecurity;
  /** The plan of a route and the service whose audience its service tokens must name. */
  planOf: (route: HttpRoute<R>) => { plan: AuthPlan; service: string };
}

const SAFE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const METHODS: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
/**
 * What Gantry keeps on each request, as request decorations: Fastify sets them in its request constructor, so every
 * request keeps one shape, and reading them costs less than a WeakMap entry per request.
 */
interface GantryRequest extends FastifyRequest {
  /** The tracking ids of the event the request reached; its errors were already logged by the event runner. */
  gantryTracking: Tracking | null;
  /** The verified caller of an authenticated request. */
  gantryIdentity: AuthIdentity | null;
  /** The path template of the event route the request reached (`/customers/:id`). */
  gantryRoute: string | null;
}

function identityOf(request: FastifyRequest): AuthIdentity | undefined {
  return (request as GantryRequest).gantryIdentity ?? undefined;
}

/**
 * The tracking ids of the event a request ran, or undefined when it never reached one (rejected before, or a route
 * of the host or a plugin). Lets a plugin's `onResponse` hook tie the request to its event's trace and span.
 */
export function requestTracking(request: FastifyRequest): Tracking | undefined {
  return (request as GantryRequest).gantryTracking ?? undefined;
}

/**
 * The path template of the route a request matched (`/customers/:id`), or undefined when it matched none. For the
 * routes of events it is kept on the request by the handler; for others it is read from `request.routeOptions`,
 * which Fastify builds anew on every read.
 */
export function requestRoute(request: FastifyRequest): string | undefined {
  return (request as GantryRequest).gantryRoute ?? request.routeOptions.url;
}

/**
 * Builds the Fastify server of a host: one route per HTTP event, validation and serialization from the events'
 * schemas, and one error shape (problem+json with the request id) for everything that goes wrong.
 */
export async function createHttpServer<R>(options: HttpServerOptions<R>): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    return503OnClosing: true,
    requestIdHeader: false,
    genReqId: (req) => {
      const sent = req.headers['x-request-id'];
      return typeof sent === 'string' && SAFE_REQUEST_ID.test(sent) ? sent : randomUuid();
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    ...(options.edges ? serverOptions(options.edges) : {}),
    clientErrorHandler: answerClientError,
  });
  app.setValidatorCompiler(createValidatorCompiler());
  app.decorateRequest('gantryTracking', null);
  app.decorateRequest('gantryIdentity', null);
  app.decorateRequest('gantryRoute', null);
  app.addHook('onRequest', (request, reply, done) => {
    if (!options.isStopping() || request.url.startsWith('/health/')) {
      done();
      return;
    }
    reply.header('connection', 'close');
    sendProblem(
      request,
      reply,
      new GantryError('GANTRY_ERR_HTTP_UNAVAILABLE', 'the service is shutting down; retry on another instance'),
      options.log,
    );
  });

  // A second router of the same routes answers 405 (and names the allowed methods) where Fastify would say 404.
  const known = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods)
      if ((METHODS as string[]).includes(method)) known.on(method as HttpMethod, route.url, () => undefined);
  });
  // Set before any route exists, so routes added by plugins (the CORS preflight route among them) answer errors, such
  // as an unsupported body type, in the same problem+json shape.
  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    sendProblem(request, reply, fromFastifyError(thrown), options.log, thrown);
  });
  if (options.edges) await registerEdges(app, options.edges);
  if (options.security) attachSecurity(app, options.security.host);
  for (const route of options.routes) {
    const { event } = route;
    const statusByDefault = defaultStatus(event.schemas);
    // Not async: the handler sends the answer when the run settles, and does not wait for the socket to finish
    // writing it (awaiting the reply would add listeners for that on every request).
    const handler = (request: FastifyRequest, reply: FastifyReply): void => {
      const tracking = continueTracking({
        requestId: request.id,
        traceparent: header(request, 'traceparent'),
        tracestate: header(request, 'tracestate'),
        caller: header(request, 'x-gantry-caller'),
      });
      reply.header('x-request-id', tracking.requestId);
      (request as GantryRequest).gantryTracking = tracking;
      (request as GantryRequest).gantryRoute = event.path;
      const input = {
        params: request.params,
        query: request.query,
        headers: request.headers,
        body: request.body,
      } as HttpInput<HttpSchemas>;
      const auth = identityOf(request);
      const call: HttpCall = auth === undefined ? { tracking } : { tracking, auth };
      options.run(route, input, call).then(
        (result) => {
          try {
            sendAnswer(reply, result, statusByDefault);
          } catch (error) {
            sendFailure(reply, error);
          }
        },
        (thrown: unknown) => sendFailure(reply, thrown),
      );
    };
    app.route({
      method: event.method,
      url: event.path,
      schema: fastifySchema(event.schemas),
      handler,
      config: eventRouteConfig(event.schemas.rateLimit),
      ...authHook(options.security, route),
    });
  }
  options.extraRoutes(app);

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = METHODS.filter((method) => method !== request.method && known.find(method, path) !== null);
    const error =
      allowed.length > 0
        ? new GantryError(
            'GANTRY_ERR_HTTP_METHOD_NOT_ALLOWED',
            `${request.method} is not allowed on ${path}; use ${allowed.join(', ')}`,
          )
        : new GantryError('GANTRY_ERR_HTTP_NOT_FOUND', `no route for ${request.method} ${path}`);
    if (allowed.length > 0) reply.header('allow', allowed.join(', '));
    sendProblem(request, reply, error, options.log);
  });

  return app;
}

/** Sends what an event's handler returned: a `reply(...)` with its status and headers, or a body with the default. */
function sendAnswer(reply: FastifyReply, result: unknown, statusByDefault: number): void {
  let status: number;
  let body: unknown;
  if (isReply(result)) {
    ({ status, body } = result);
    for (const name in result.headers) reply.header(name, result.headers[name]);
  } else {
    status = statusByDefault;
    body = result;
  }
  reply.code(status);
  if (body === undefined || status === 204) reply.send();
  else reply.send(body);
}

/** Hands what a run threw to the error handler as an error, as Fastify does with a rejected handler. */
function sendFailure(reply: FastifyReply, thrown: unknown): void {
  if (reply.sent) return;
  reply.send(thrown instanceof Error ? thrown : toGantryError(thrown));
}

/**
 * The hook that verifies the caller of a route, or nothing for a public one. It runs at `preParsing`: after every
 * `onRequest` hook, so CORS preflights are answered and rate limits counted before any credential is checked (a
 * password guesser is throttled before each scrypt), and before the body is read, so an unauthenticated caller
 * never learns about the body's schema.
 */
function authHook<R>(security: HttpSecurity<R> | undefined, route: HttpRoute<R>): Partial<RouteOptions> {
  if (!security) return {};
  const { plan, service } = security.planOf(route);
  if (plan.methods.length === 0) return {};
  return {
    preParsing: async (request: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
      const identity = await security.host.authenticate(plan, request, service);
      if (identity !== undefined) (request as GantryRequest).gantryIdentity = identity;
      return payload as never;
    },
  };
}

/**
 * The verified caller of a request, once its route's auth ran; undefined for public routes and anonymous calls.
 */
export function requestIdentity(request: FastifyRequest): AuthIdentity | undefined {
  return identityOf(request);
}

/**
 * Records the verified caller of a request that a host plugin authenticated itself (the browser login's session
 * cookie), so the event's handler sees it as `ctx.auth` and the logs name its subject. Call it from an `onRequest`
 * hook; a credential the event's own auth verifies later takes its place.
 */
export function setRequestIdentity(request: FastifyRequest, identity: AuthIdentity): void {
  (request as GantryRequest).gantryIdentity = identity;
}

/**
 * Answers what Node's HTTP parser refused before any route saw it (headers too large, a client too slow) with a
 * problem document, then closes the connection as Node does.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const gantry =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new GantryError('GANTRY_ERR_HTTP_HEADERS_TOO_LARGE', 'the request line and headers are too large')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GantryError('GANTRY_ERR_HTTP_REQUEST_TIMEOUT', 'the request was not received in time')
        : new GantryError('GANTRY_ERR_HTTP_MALFORMED', 'the request could not be parsed');
  const title = (errorCodes as Record<string, { title: string }>)[gantry.code]?.title ?? 'Error';
  const body = JSON.stringify(toProblem(gantry, title, randomUuid(), '/'));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${gantry.status} ${title}\r\nConnection: close\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** How the results of one event's handler pick the status they are answered with; worked out once per event. */
export function answerStatusOf(schemas: HttpSchemas): (result: unknown) => number {
  const byDefault = defaultStatus(schemas);
  return (result) => (isReply(result) ? result.status : byDefault);
}

/** The status of an event's answer when its handler returns a bare body: read once per route, when it is built. */
function defaultStatus(schemas: HttpSchemas): number {
  const response = schemas.response;
  if (response === undefined) return 204;
  if (!isResponseMap(response)) return 200;
  return DEFAULT_STATUSES.find((code) => code in response) ?? 200;
}

/** True when `response` maps statuses to schemas rather than being one schema. */
export function isResponseMap(response: HttpSchemas['response']): response is Record<number, TSchema | null> {
  return (
    response !== undefined &&
    Object.keys(response).length > 0 &&
    Object.keys(response).every((key) => /^\d{3}$/.test(key))
  );
}

function fastifySchema(schemas: HttpSchemas): Record<string, unknown> {
  const schema: Record<string, unknown> = {};
  if (schemas.params) schema.params = schemas.params;
  if (schemas.query) schema.querystring = schemas.query;
  if (schemas.headers) schema.headers = schemas.headers;
  if (schemas.body) schema.body = closeObjects(schemas.body);
  const response: Record<string, unknown> = {};
  if (schemas.response !== undefined) {
    const map = isResponseMap(schemas.response) ? schemas.response : { 200: schemas.response };
    for (const [status, body] of Object.entries(map)) if (body) response[status] = body;
  }
  if (Object.keys(response).length > 0) schema.response = response;
  return schema;
}

/** Turns what Fastify or a handler threw into a coded error with the right status. */
function fromFastifyError(error: FastifyError & { validation?: unknown; validationContext?: string }): GantryError {
  if (error instanceof GantryError) return error;
  if (Array.isArray(error.validation)) {
    const part = error.validationContext === 'querystring' ? 'query' : (error.validationContext ?? 'body');
    const problems = fieldProblems(part, error.validation);
    return new GantryError(
      'GANTRY_ERR_HTTP_VALIDATION',
      `the request ${part} is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
      {
        details: problems,
      },
    );
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GantryError('GANTRY_ERR_HTTP_PAYLOAD_TOO_LARGE', error.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GantryError('GANTRY_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', error.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GantryError('GANTRY_ERR_HTTP_MALFORMED', `the request body is not valid JSON: ${error.message}`);
  }
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
    return new GantryError('GANTRY_ERR_HTTP_MALFORMED', `the request body is not valid JSON: ${error.message}`);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new GantryError('GANTRY_ERR_HTTP_MALFORMED', error.message, { status: error.statusCode });
  }
  return toGantryError(error);
}

function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  error: GantryError,
  log: Logger,
  cause?: unknown,
): void {
  const requestId = request.id;
  const path = request.url.split('?')[0] ?? '/';
  if (requestTracking(request) === undefined) {
    // The event runner did not see this request (rejected before any handler): log it here, once.
    if (error.status >= 500)
      log.error({ requestId, method: request.method, path, status: error.status, err: cause }, 'FAILED');
    else {
      const subject = identityOf(request)?.subject;
      log.info(
        {
          requestId,
          method: request.method,
          path,
          status: error.status,
          code: error.code,
          ...(subject ? { subject } : {}),
        },
        'REJECTED',
      );
    }
  }
  const challenges = challengesOf(error);
  if (challenges.length > 0) reply.header('www-authenticate', challenges.join(', '));
  const title = (errorCodes as Record<string, { title: string }>)[error.code]?.title ?? 'Error';
  reply
    .code(error.status)
    .header('x-request-id', requestId)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(toProblem(error, title, requestId, path)));
}
