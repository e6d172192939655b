import type { Static, TSchema } from 'typebox';
import type { EventAuth } from '../auth/rules.ts';

/** The HTTP methods an event can answer. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Response schemas by status; `null` for a status with no body (204). */
export type ResponseMap = { readonly [status: number]: TSchema | null };

/** The schemas and options of one HTTP event. */
export interface HttpSchemas {
  params?: TSchema;
  /** Query values arrive as strings and are coerced to their schema types. */
  query?: TSchema;
  headers?: TSchema;
  body?: TSchema;
  /** One schema (status 200) or a schema per status. Omitted: the event answers 204 with no body. */
  response?: TSchema | ResponseMap;
  summary?: string;
  description?: string;
  /** Defaults to `<service>.<method><Path>`, e.g. `customers.getCustomersById`. */
  operationId?: string;
  /** Milliseconds before the event is aborted and answered 504; defaults to the host's `eventTimeoutMs`. */
  timeout?: number;
  tags?: string[];
  /** Excluded from the OpenAPI document. */
  hidden?: boolean;
  /**
   * Who may call the event: `'public'`, a method (`'bearer'`, `'apiKey'`, `'basic'`, `'service'`), several (any one
   * suffices), or `{ methods, scopes, roles, allow }`. Defaults to the host's `GANTRY_AUTH_DEFAULT`; with neither, prod
   * refuses to start. The verified caller is `ctx.auth`. See docs/security.md.
   */
  auth?: EventAuth;
  /** A rate limit of this event per client, counted apart and replacing the host-wide one for it. */
  rateLimit?: EventRateLimit;
}

/** A per-event rate limit: at most `max` requests per client in each window. */
export interface EventRateLimit {
  max: number;
  /** The window in ms; default 60 000. */
  windowMs?: number;
}

type StaticOr<S, Fallback> = S extends TSchema ? Static<S> : Fallback;

/** What an HTTP handler receives, typed from its schemas. */
export interface HttpInput<S extends HttpSchemas> {
  params: StaticOr<S['params'], Record<string, string>>;
  query: StaticOr<S['query'], Record<string, unknown>>;
  headers: StaticOr<S['headers'], Record<string, string | string[] | undefined>>;
  body: StaticOr<S['body'], undefined>;
}

/** The response schemas of an event, as a map by status. */
export type ResponsesOf<S extends HttpSchemas> = S['response'] extends TSchema
  ? { 200: S['response'] }
  : S['response'] extends ResponseMap
    ? S['response']
    : { 204: null };

type BodyOf<X> = X extends TSchema ? Static<X> : undefined;

/** The status a handler answers with when it returns a plain value: the first of 200, 201, 202, 204 declared. */
export type DefaultStatus<M> = 200 extends keyof M ? 200 : 201 extends keyof M ? 201 : 202 extends keyof M ? 202 : 204;

const REPLY = Symbol('gantry.reply');

/** An explicit response: a status, its body and extra headers. */
export interface Reply<Status extends number = number, Body = unknown> {
  readonly [REPLY]: true;
  readonly status: Status;
  readonly body: Body;
  readonly headers: Readonly<Record<string, string>>;
}

type ReplyUnion<M> = { [K in keyof M & number]: Reply<K, BodyOf<M[K]>> }[keyof M & number];

/** What an HTTP handler may return: the body of its default status, or a {@link Reply} for any declared status. */
export type HttpResult<S extends HttpSchemas> =
  | BodyOf<ResponsesOf<S>[DefaultStatus<ResponsesOf<S>> & keyof ResponsesOf<S>]>
  | ReplyUnion<ResponsesOf<S>>;

/**
 * Answers with a given status, body and headers.
 *
 * @example
 * return reply(201, customer, { location: `/customers/${customer.id}` });
 */
export function reply<const Status extends number, Body>(
  status: Status,
  body: Body,
  headers: Record<string, string> = {},
): Reply<Status, Body> {
  return { [REPLY]: true, status, body, headers };
}

/** True when a handler returned a {@link Reply} rather than a plain body. */
export function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && REPLY in value;
}

/** The statuses a handler may answer with by returning a plain value, in order of preference. */
export const DEFAULT_STATUSES = [200, 201, 202, 204] as const;
