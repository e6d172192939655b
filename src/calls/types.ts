import type { Static, TSchema } from 'typebox';
import type { GantryError } from '../errors/gantry-error.ts';
import type { HttpMethod, HttpSchemas } from '../service/http-event.ts';
import type { RpcSchemas } from '../service/service.ts';

/** The route, RPC and work-queue types a service's builder recorded (see `Service['~api']`). */
export type ApiOf<S> = S extends { readonly '~api'?: infer A } ? NonNullable<A> : never;

/** The paths of a service's routes for one method. */
export type PathsOf<A, M extends HttpMethod> = {
  [K in keyof A]: K extends `${M} ${infer P}` ? P : never;
}[keyof A];

/** The schemas of the route `M P` of a service. */
export type RouteOf<A, M extends HttpMethod, P extends string> = Extract<A[`${M} ${P}` & keyof A], HttpSchemas>;

/** Options every call may set, beside its input. */
export interface CallOptions<T = unknown> {
  /** Longest time one attempt may take, in ms (the caller's remaining deadline shortens it further). */
  timeout?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Treat the call as safe to send twice (retried on timeouts and 5xx); the method decides by default. */
  idempotent?: boolean;
  /** Ends the call when it aborts; the caller's event signal always does. */
  signal?: AbortSignal;
  /** Answer with this instead of throwing when every attempt failed or the breaker is open. */
  fallback?: (error: GantryError) => T | Promise<T>;
}

type IsOptional<T> = Record<never, never> extends T ? true : false;

type ParamsPart<S extends HttpSchemas> = S['params'] extends TSchema
  ? { params: Static<S['params']> }
  : { params?: Record<string, string | number> };
type QueryPart<S extends HttpSchemas> = S['query'] extends TSchema
  ? IsOptional<Static<S['query']>> extends true
    ? { query?: Static<S['query']> }
    : { query: Static<S['query']> }
  : { query?: Record<string, string | number | boolean> };
type BodyPart<S extends HttpSchemas> = S['body'] extends TSchema ? { body: Static<S['body']> } : { body?: undefined };

/** What a typed call takes: the route's params, query and body, typed from its schemas, and the call's options. */
export type CallInput<S extends HttpSchemas> = ParamsPart<S> & QueryPart<S> & BodyPart<S> & CallOptions<CallResult<S>>;

type NeedsInput<S extends HttpSchemas> = S['params'] extends TSchema
  ? true
  : S['body'] extends TSchema
    ? true
    : S['query'] extends TSchema
      ? IsOptional<Static<S['query']>> extends true
        ? false
        : true
      : false;

/** The input argument of a typed call: required when the route has params, a body or a required query. */
export type CallArgs<S extends HttpSchemas> =
  NeedsInput<S> extends true ? [input: CallInput<S>] : [input?: CallInput<S>];

type BodyOf<X> = X extends TSchema ? Static<X> : undefined;

/**
 * The declared responses of a route by status. A map is told from a single schema by its keys: a map's are all
 * numbers (TypeBox schemas are loose enough that a map would pass for one).
 */
export type ResponsesOf<S extends HttpSchemas> = S['response'] extends undefined
  ? { 204: null }
  : [Exclude<keyof S['response'], number>] extends [never]
    ? S['response']
    : { 200: S['response'] };

/** One answer of a call: its status, whether it is a success (2xx), its body typed from that status's schema. */
export interface CallAnswer<Status extends number, Body> {
  readonly status: Status;
  readonly ok: `${Status}` extends `2${string}` ? true : false;
  readonly body: Body;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * What a typed call resolves to: one {@link CallAnswer} per status the route declares, discriminated on `status` (and
 * `ok`). Declared error statuses (404, 409) are answers, not exceptions; anything undeclared throws a coded error.
 */
export type CallResult<S extends HttpSchemas> = {
  [K in keyof ResponsesOf<S> & number]: CallAnswer<K, BodyOf<ResponsesOf<S>[K]>>;
}[keyof ResponsesOf<S> & number];

/**
 * A client of one Gantry service, typed from its definition: paths, inputs and answers come from the routes its
 * builder declared, so a wrong path or input does not compile.
 *
 * @example
 * const found = await ctx.client(customers).get('/customers/:id', { params: { id } });
 * if (found.status === 404) return reply(404, ...);
 * found.body.email; // typed
 */
export interface ServiceClient<A> {
  get<P extends PathsOf<A, 'GET'> & string>(
    path: P,
    ...input: CallArgs<RouteOf<A, 'GET', P>>
  ): Promise<CallResult<RouteOf<A, 'GET', P>>>;
  post<P extends PathsOf<A, 'POST'> & string>(
    path: P,
    ...input: CallArgs<RouteOf<A, 'POST', P>>
  ): Promise<CallResult<RouteOf<A, 'POST', P>>>;
  put<P extends PathsOf<A, 'PUT'> & string>(
    path: P,
    ...input: CallArgs<RouteOf<A, 'PUT', P>>
  ): Promise<CallResult<RouteOf<A, 'PUT', P>>>;
  patch<P extends PathsOf<A, 'PATCH'> & string>(
    path: P,
    ...input: CallArgs<RouteOf<A, 'PATCH', P>>
  ): Promise<CallResult<RouteOf<A, 'PATCH', P>>>;
  delete<P extends PathsOf<A, 'DELETE'> & string>(
    path: P,
    ...input: CallArgs<RouteOf<A, 'DELETE', P>>
  ): Promise<CallResult<RouteOf<A, 'DELETE', P>>>;
}

/** The input of a call to an API known from its OpenAPI document: checked at run time against the document. */
export interface OpenApiCallInput extends CallOptions<OpenApiAnswer> {
  params?: Record<string, string | number>;
  query?: Record<string, string | number | boolean>;
  body?: unknown;
}

/** An answer of an OpenAPI client: loosely typed, but validated against the document's schema for its status. */
export interface OpenApiAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string>>;
}

/** A client of a non-Gantry HTTP API, from its OpenAPI document: operations by `operationId`. */
export interface OpenApiClient {
  /** Calls an operation by its `operationId`; statuses the document declares come back as answers. */
  call(operationId: string, input?: OpenApiCallInput): Promise<OpenApiAnswer>;
  /** The operation ids the document declares. */
  operations(): string[];
}

/** The names of a service's RPCs. */
export type RpcNamesOf<A> = { [K in keyof A]: K extends `rpc ${infer N}` ? N : never }[keyof A];
/** The names of a service's work queues. */
export type WorkNamesOf<A> = { [K in keyof A]: K extends `work ${infer N}` ? N : never }[keyof A];

/** An RPC to call with `ctx.request`: typed when made by `rpcTarget(service, name)`. */
export interface RpcTarget<I extends TSchema = TSchema, O extends TSchema = TSchema> {
  readonly kind: 'rpc';
  readonly service: string;
  readonly name: string;
  /** The RPC's schemas, when the caller has its service's definition: input checked before sending, output after. */
  readonly schemas?: RpcSchemas<I, O>;
}

/** A work queue to send to with `ctx.send`: typed when made by `workTarget(service, name)`. */
export interface WorkTarget<I extends TSchema = TSchema> {
  readonly kind: 'work';
  readonly service: string;
  readonly name: string;
  readonly input?: I;
}

/** Options of `ctx.request`. */
export interface RequestOptions<T = unknown> {
  /** How long to wait for the reply, in ms (the caller's remaining deadline shortens it further). */
  timeout?: number;
  /** Answer with this instead of throwing when the call failed (timeout, breaker open, no instance). */
  fallback?: (error: GantryError) => T | Promise<T>;
  /** Retry on timeouts and unreachable targets: only for RPCs whose effect is the same when run twice. */
  idempotent?: boolean;
}

/** Options of `ctx.send`. */
export interface SendOptions {
  /** Partition key: messages with one key keep their order where the broker can. */
  key?: string;
  /** A publish-side idempotency key: a second send with the same key is the same message. */
  idempotencyKey?: string;
}
