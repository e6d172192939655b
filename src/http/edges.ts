import type { FastifyCorsOptions } from '@fastify/cors';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, FastifyServerOptions, onRequestHookHandler } from 'fastify';
import FindMyWay, { type HTTPVersion } from 'find-my-way';
import helmet, { type HelmetOptions } from 'helmet';
import type { GantryEnv } from '../config/env.ts';
import { loadClient } from '../db/load-client.ts';
import { GantryError } from '../errors/gantry-error.ts';
import type { EventRateLimit } from '../service/http-event.ts';
import type { AnyService } from '../service/service.ts';
import { jsonDepth } from './json-depth.ts';

/** A store for rate-limit counters shared by every instance (an ioredis client). */
export type RateLimitRedis = NonNullable<Parameters<typeof rateLimit>[1]['redis']>;

/** The protections at the edge of the HTTP server: who may call from a browser, headers, rates and sizes. */
export interface EdgeOptions {
  env: GantryEnv;
  cors: CorsPolicy & {
    /** Services with a policy of their own, applied to their routes; every other route gets the host's. */
    services?: readonly ServiceCorsRoutes[];
  };
  /** Add helmet's security headers to every answer. */
  securityHeaders: boolean;
  rateLimit: {
    /** Requests per client and window across all events; 0 for no host-wide limit. */
    max: number;
    windowMs: number;
    /** Counters in Redis (shared by every instance) instead of this process's memory. */
    redis?: RateLimitRedis;
  };
  limits: {
    /** Largest request line plus headers, in bytes. */
    headerBytes: number;
    urlLength: number;
    jsonDepth: number;
  };
  timeouts: {
    /** Whole request received within, in ms; 0 for none. */
    requestMs: number;
    /** Request line and headers received within, in ms. */
    headersMs: number;
    /** Idle socket closed after, in ms; 0 for none. */
    connectionMs: number;
  };
  /** Proxies trusted for `X-Forwarded-For`: `true`, a hop count, or addresses and CIDRs separated by commas. */
  trustProxy?: string | undefined;
}

/** Who may call from a browser on another origin. */
export interface CorsPolicy {
  /** `*`, origins separated by commas, or unset: any origin in dev, none elsewhere. */
  origins?: string | undefined;
  credentials: boolean;
  maxAgeSeconds: number;
}

/** A service's own CORS policy and the routes it covers (`GET /orders/:id`, in Fastify's path syntax). */
export interface ServiceCorsRoutes {
  service: string;
  policy: CorsPolicy;
  routes: readonly { method: string; path: string }[];
}

/**
 * The Fastify constructor options the edges need: Node's header size limit and the timeouts against slow clients
 * (Fastify sets `requestTimeout` after creating the server, so it is passed to Node too, keeping `headersTimeout`
 * within it as Node requires), and which proxies to trust for the client address that rate limits count by.
 */
export function serverOptions(options: EdgeOptions): FastifyServerOptions {
  const { requestMs, headersMs, connectionMs } = options.timeouts;
  const headersTimeout = requestMs > 0 ? Math.min(headersMs, requestMs) : headersMs;
  const trustProxy = parseTrustProxy(options.trustProxy);
  return {
    requestTimeout: requestMs,
    connectionTimeout: connectionMs,
    http: {
      maxHeaderSize: options.limits.headerBytes,
      requestTimeout: requestMs,
      headersTimeout,
      // Node looks for overdue requests on this period (30 s by default): short enough that the timeouts hold.
      connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(headersTimeout / 2))),
    },
    ...(trustProxy === undefined ? {} : { trustProxy }),
  } as FastifyServerOptions;
}

function parseTrustProxy(value: string | undefined): boolean | number | string[] | undefined {
  const text = value?.trim();
  if (!text || text === 'false') return undefined;
  if (text === 'true') return true;
  if (/^\d+$/.test(text)) return Number(text);
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** Headers a browser script may read from a cross-origin answer. */
const EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'www-authenticate',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
];

/** The route config flag that marks the routes of HTTP events: JSON answers, never pages. */
export const EVENT_ROUTE = 'gantryEvent';

/**
 * Events answer JSON, never a page to render: they get the headers OWASP advises for APIs (a policy under which
 * nothing may load or frame them, HSTS, `nosniff`, `X-Frame-Options: DENY`) and the resource policy, and not the ones
 * that only mean something to a rendered page: every header is written on every answer, so five rather than twelve.
 * Routes of the host and its plugins, which may serve pages, keep helmet's defaults.
 */
const EVENT_HELMET: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  referrerPolicy: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

/**
 * The docs UI starts Swagger UI with an inline script and inline styles: its pages get a policy that allows them,
 * every other answer keeps helmet's strict default.
 */
const DOCS_HELMET: HelmetOptions = {
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'", "'unsafe-inline'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
    },
  },
};

/**
 * Registers the edges on a server before its routes: URL length, JSON depth, CORS, security headers and rate limits.
 * Rejections are GantryErrors, so they answer problem+json like every other error. Awaited before routes are added:
 * rate limits attach to routes as they are added.
 */
export async function registerEdges(app: FastifyInstance, options: EdgeOptions): Promise<void> {
  const { urlLength, jsonDepth: maxDepth } = options.limits;
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.url.length > urlLength) {
      done(new GantryError('GANTRY_ERR_HTTP_URI_TOO_LONG', `the URL is longer than ${urlLength} characters`));
      return;
    }
    done();
  });

  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.length > maxDepth && jsonDepth(text, maxDepth) > maxDepth) {
      done(
        new GantryError('GANTRY_ERR_HTTP_JSON_TOO_DEEP', `the JSON body nests deeper than ${maxDepth} levels`),
        undefined,
      );
      return;
    }
    parseJson(request, text, done);
  });

  await registerCors(app, options.env, options.cors);

  if (options.securityHeaders) {
    const events = helmetHeaders(EVENT_HELMET);
    const pages = helmetHeaders({});
    const docs = helmetHeaders(DOCS_HELMET);
    // Each route gets the hook of its kind as it is added, so no request has to read its route's options (Fastify
    // builds a new object on every read of `routeOptions`) to pick its headers.
    app.addHook('onRoute', (route) => {
      const isEvent = (route.config as { [EVENT_ROUTE]?: boolean } | undefined)?.[EVENT_ROUTE] === true;
      const headers = isEvent ? events : route.url === '/docs' || route.url.startsWith('/docs/') ? docs : pages;
      const setHeaders: onRequestHookHandler = (_request, reply, done) => {
        reply.headers(headers);
        done();
      };
      const own = route.onRequest;
      route.onRequest = own === undefined ? [setHeaders] : [setHeaders, ...(Array.isArray(own) ? own : [own])];
    });
    // Answers no route owns (404, 405) get the headers of pages.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.is404) reply.headers(pages);
      done();
    });
  }

  await app.register(rateLimit, {
    global: options.rateLimit.max > 0,
    max: options.rateLimit.max,
    timeWindow: options.rateLimit.windowMs,
    ...(options.rateLimit.redis ? { redis: options.rateLimit.redis, nameSpace: 'gantry-rate-limit:' } : {}),
    // Health probes come from load balancers at a steady rate and must never be refused for it.
    allowList: (request: FastifyRequest) => request.url.startsWith('/health/'),
    errorResponseBuilder: (_request, context) =>
      new GantryError(
        'GANTRY_ERR_HTTP_RATE_LIMITED',
        `too many requests: at most ${context.max} per ${Math.round(context.ttl / 1000) || 1} s; retry in ${context.after}`,
        { status: context.statusCode },
      ),
  });
}

/**
 * CORS for the host's routes and, where services have policies of their own, for theirs. Without any service policy
 * it is the plain `@fastify/cors` registration (nothing per request). With some, a router of those services' routes
 * picks the policy of each request: by its method and path, or for a preflight by the method it announces in
 * `Access-Control-Request-Method` (a preflight reaches the catch-all OPTIONS route, not the service's).
 */
async function registerCors(
  app: FastifyInstance,
  env: GantryEnv,
  host: CorsPolicy & { services?: readonly ServiceCorsRoutes[] },
): Promise<void> {
  const hostOptions = corsOptions(env, host, 'host.cors (GANTRY_CORS_ORIGINS)');
  const services = host.services ?? [];
  if (services.length === 0) {
    await app.register(cors, hostOptions);
    return;
  }
  const router = FindMyWay<HTTPVersion.V1>({ ignoreTrailingSlash: true, maxParamLength: 500 });
  for (const { service, policy, routes } of services) {
    const options = corsOptions(env, policy, `the CORS policy of service '${service}'`);
    for (const route of routes) router.on(route.method as 'GET', route.path, () => undefined, options);
  }
  const policyOf = (request: FastifyRequest): FastifyCorsOptions => {
    const announced = request.headers['access-control-request-method'];
    let method =
      request.method === 'OPTIONS' && typeof announced === 'string' ? announced.toUpperCase() : request.method;
    if (method === 'HEAD') method = 'GET';
    if (!CORS_METHODS.includes(method)) return hostOptions;
    const found = router.find(method as 'GET', request.url.split('?')[0] ?? '/');
    return (found?.store as FastifyCorsOptions | undefined) ?? hostOptions;
  };
  await app.register(cors, { delegator: (request, callback) => callback(null, policyOf(request)) });
}

const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * The services that have a CORS policy of their own, with their HTTP routes: the host config's policy for the service
 * (`host.cors.services.<name>`) if there is one, else the one the service declares (`service({ cors })`).
 */
export function serviceCorsRoutes(
  services: readonly AnyService[],
  configured: Readonly<Record<string, { origins?: string; credentials?: boolean; maxAgeSeconds?: number }>>,
): ServiceCorsRoutes[] {
  const result: ServiceCorsRoutes[] = [];
  for (const svc of services) {
    const declared = svc.cors;
    const fromConfig = configured[svc.info.name];
    const policy: CorsPolicy | undefined = fromConfig
      ? {
          origins: fromConfig.origins,
          credentials: fromConfig.credentials ?? false,
          maxAgeSeconds: fromConfig.maxAgeSeconds ?? 600,
        }
      : declared
        ? {
            origins: typeof declared.origins === 'string' ? declared.origins : declared.origins?.join(','),
            credentials: declared.credentials ?? false,
            maxAgeSeconds: declared.maxAgeSeconds ?? 600,
          }
        : undefined;
    if (!policy) continue;
    const routes = svc.events.flatMap((event) =>
      event.kind === 'http' ? [{ method: event.method, path: event.path }] : [],
    );
    result.push({ service: svc.info.name, policy, routes });
  }
  return result;
}

function corsOptions(env: GantryEnv, policy: CorsPolicy, where: string): FastifyCorsOptions {
  return {
    origin: corsOrigin(env, policy.origins, policy.credentials, where),
    credentials: policy.credentials,
    maxAge: policy.maxAgeSeconds,
    exposedHeaders: EXPOSED_HEADERS,
    methods: CORS_METHODS,
  };
}

/**
 * The headers helmet sets for these options, worked out once. With options that hold no functions, helmet sets the
 * same headers on every answer; `@fastify/helmet` builds helmet's middleware again for each request, which cost
 * 0.1–0.3 ms per request here, so the headers are computed at start and set from this table instead.
 */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(options)({} as never, recorder as never, (error?: unknown) => {
    failure = error;
  });
  if (failure) throw failure;
  return headers;
}

/** The route options of an event's own rate limit, for `@fastify/rate-limit`. */
export function routeRateLimit(limit: EventRateLimit | undefined): Record<string, unknown> | undefined {
  if (limit === undefined) return undefined;
  return { rateLimit: { max: limit.max, timeWindow: limit.windowMs ?? 60_000 } };
}

/** The route config of an event's route: marked as an event's, with its own rate limit if it has one. */
export function eventRouteConfig(limit: EventRateLimit | undefined): Record<string, unknown> {
  return { [EVENT_ROUTE]: true, ...routeRateLimit(limit) };
}

/**
 * The CORS origin option: unset means any origin in dev (a local front end on another port) and none elsewhere;
 * `*` any origin (never with credentials); otherwise the exact origins listed.
 */
export function corsOrigin(
  env: GantryEnv,
  origins: string | undefined,
  credentials: boolean,
  where = 'host.cors (GANTRY_CORS_ORIGINS)',
): boolean | string | string[] {
  if (origins === undefined || origins.trim() === '') return env === 'dev';
  if (origins.trim() === '*') {
    if (credentials) {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `${where}: credentials cannot be allowed for any origin ('*'); list the origins`,
      );
    }
    return '*';
  }
  return origins
    .split(',')
    .map((origin) => origin.trim().replace(/\/+$/, ''))
    .filter(Boolean);
}

/**
 * Connects the Redis client rate limits count in, loading ioredis only now (it is an optional peer). Tuned as
 * `@fastify/rate-limit` advises: a short connect timeout and one retry per command, so a Redis outage costs each
 * request little.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when ioredis is not installed.
 */
export async function openRateLimitRedis(url: string): Promise<RateLimitRedis & { quit(): Promise<unknown> }> {
  const { Redis } = await loadClient(() => import('ioredis'), 'ioredis');
  const client = new Redis(url, { connectTimeout: 500, maxRetriesPerRequest: 1, lazyConnect: true });
  await client.connect();
  return client as unknown as RateLimitRedis & { quit(): Promise<unknown> };
}
