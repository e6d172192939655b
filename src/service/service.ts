import Type, { type Static, type TSchema } from 'typebox';
import type { Envelope } from '../bus/envelope.ts';
import type { DriverClients, DriverMap } from '../drivers/driver.ts';
import { GantryError } from '../errors/gantry-error.ts';
import type { CronOptions, JobsOptions, TaskContextExtras, TaskDef, TaskOptions, TickInfo } from '../jobs/task.ts';
import { defineTask } from '../jobs/task.ts';
import type { Context, ServiceContext, ServiceInfo } from './context.ts';
import type { HttpInput, HttpMethod, HttpResult, HttpSchemas } from './http-event.ts';
import { defineStream, type StreamDef } from './stream.ts';

type Awaitable<T> = T | Promise<T>;
type SettingsOf<S> = S extends TSchema ? Static<S> : Record<string, never>;

/** Options of {@link service}. */
export interface ServiceOptions<Settings extends TSchema | undefined, Drivers extends DriverMap> {
  /** Lower-case words joined by `-`: used in routes' tags, config keys (`CUSTOMERS__...`) and consumer groups. */
  name: string;
  /** Semantic version, `major.minor.patch`. */
  version: string;
  description?: string;
  /** The typed settings of the service, resolved from config files and the environment at start. */
  settings?: Settings;
  /** The drivers the service uses, by the name handlers find them under in `ctx.drivers`. */
  drivers?: Drivers;
  /** Deployment groups: a host can start only the services of a group. */
  groups?: string[];
  /**
   * The service's own CORS policy, applied to its routes instead of the host's (`host.cors`). The host config
   * `host.cors.services.<name>` (`GANTRY_CORS_SERVICES`) wins over it, so each deployment can name its origins.
   */
  cors?: ServiceCors;
}

/**
 * Which browser origins may call a service's routes. Unset `origins` means what it means for the host: any origin in
 * dev, none elsewhere, so a policy without origins stays closed in prod.
 *
 * @example
 * service({ name: 'orders', version: '1.0.0', cors: { origins: ['https://shop.example.com'], credentials: true } })
 */
export interface ServiceCors {
  /** `*`, or the exact origins allowed (`https://shop.example.com`); a string may list them separated by commas. */
  origins?: string | readonly string[];
  /** Allow cookies and `Authorization` on cross-origin requests (never with `*`); default false. */
  credentials?: boolean;
  /** How long browsers may cache a preflight answer, in seconds; default 600. */
  maxAgeSeconds?: number;
}

/** What a stream consumer's context adds: the message being handled. */
export interface MessageInfo {
  readonly id: string;
  readonly stream: string;
  readonly attempt: number;
  readonly key?: string;
  readonly source: string;
  readonly time: string;
}

/** Options of a stream consumer. */
export interface ConsumerOptions {
  /** The consumer group; every group gets every message. Defaults to the service name. */
  group?: string;
  /** Attempts before the message goes to `<stream>.dlq`; default 5. */
  maxAttempts?: number;
  /** Messages handled at once by one instance; default 8. */
  concurrency?: number;
  /** Delay before the first retry in ms, doubling each time with jitter, up to `maxBackoffMs`; default 200. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Milliseconds a handler may take before it is aborted and the message retried; defaults to the host's. */
  timeout?: number;
  /**
   * The database driver (by its alias) whose inbox makes this consumer effectively-once: the handler runs in a
   * transaction of that database (`ctx.tx`) that also records the message id, and a redelivered message whose id is
   * recorded is acknowledged without running the handler again.
   */
  inbox?: string;
}

/** The transaction of an inbox consumer: `ctx.tx`, typed from the driver the `inbox` option names. */
type InboxTx<Drivers extends DriverMap, O extends ConsumerOptions> = O['inbox'] extends keyof Drivers & string
  ? DriverClients<Drivers>[O['inbox']] extends { db: infer Db }
    ? { tx: Db }
    : { tx: never }
  : unknown;

/** Options of a service loop. */
export interface LoopOptions {
  /** First restart delay after a crash, doubling up to `maxRestartDelayMs`; default 500. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

/** The context of a handler of service `S`: use it to type handlers written apart from the service chain. */
export type ContextOf<S> =
  S extends Service<infer Settings, infer Drivers, object>
    ? Context<SettingsOf<Settings>, DriverClients<Drivers>>
    : never;

type Ctx<Settings, Drivers extends DriverMap> = Context<SettingsOf<Settings>, DriverClients<Drivers>>;
type SvcCtx<Settings, Drivers extends DriverMap> = ServiceContext<SettingsOf<Settings>, DriverClients<Drivers>>;

/** An HTTP event as the host sees it. */
export interface HttpEventDef {
  readonly kind: 'http';
  readonly name: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly schemas: HttpSchemas;
  readonly handler: (input: HttpInput<HttpSchemas>, ctx: Context) => Promise<unknown>;
  readonly stepNames?: readonly string[];
}

/** A stream consumer as the host sees it. */
export interface ConsumerDef {
  readonly kind: 'consumer';
  readonly name: string;
  readonly stream: StreamDef;
  readonly group: string;
  readonly options: ConsumerOptions;
  readonly handler: (data: unknown, ctx: Context & { message: MessageInfo; envelope: Envelope }) => Promise<unknown>;
}

/** A long-running loop as the host sees it. */
export interface LoopDef {
  readonly kind: 'loop';
  readonly name: string;
  readonly options: LoopOptions;
  readonly handler: (ctx: Context) => Promise<void>;
}

/** An operator command as the host sees it (`gantry run <service> <command>`). */
export interface CommandDef {
  readonly kind: 'command';
  readonly name: string;
  readonly description: string;
  readonly input: TSchema | undefined;
  readonly handler: (input: unknown, ctx: Context) => Promise<unknown>;
}

/** The schemas of an RPC (`svc.rpc`): its input and output, and a timeout of its own. */
export interface RpcSchemas<I extends TSchema = TSchema, O extends TSchema = TSchema> {
  input: I;
  output: O;
  /** Milliseconds the handler may take; defaults to the host's `eventTimeoutMs` (and never past the caller's deadline). */
  timeout?: number;
  description?: string;
}

/** An RPC as the host sees it: served on the RPC transport, answered by any one instance. */
export interface RpcDef {
  readonly kind: 'rpc';
  readonly name: string;
  readonly schemas: RpcSchemas;
  readonly handler: (input: unknown, ctx: Context) => Promise<unknown>;
}

/** Options of a work queue (`svc.worker`): the input schema and the consumer's retry settings. */
export interface WorkerOptions<I extends TSchema = TSchema> extends Omit<ConsumerOptions, 'group' | 'inbox'> {
  input: I;
}

/** The stream a work queue rides on: `<service>.work.<name>`, consumed by the group `<service>.work`. */
export function workStreamName(service: string, name: string): string {
  return `${service}.work.${name}`;
}

/** A task as the host sees it: its definition and its handler. */
export interface TaskEventDef {
  readonly kind: 'task';
  /** `task <name>`, as logs and hooks name its runs. */
  readonly name: string;
  readonly task: TaskDef;
  readonly handler: (input: unknown, ctx: Context & TaskContextExtras) => Promise<unknown>;
}

/** A cron schedule as the host sees it: each tick is a job of its own internal task, `cron:<schedule>`. */
export interface CronEventDef {
  readonly kind: 'cron';
  readonly schedule: string;
  readonly pattern: string;
  readonly options: CronOptions;
  readonly task: TaskDef;
  readonly handler: (input: unknown, ctx: Context & TaskContextExtras) => Promise<unknown>;
}

/** Any event of a service. */
export type EventDef = HttpEventDef | ConsumerDef | LoopDef | CommandDef;

/** A plugin of one service: a plain function that adds events, hooks or streams to it. */
export type ServicePlugin = (service: Service<TSchema | undefined, DriverMap>) => void;

const SERVICE_NAME = /^[a-z][a-z0-9-]*$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[\w.]+)?$/;
const ROUTE = /^\/[\w\-./:{}*]*$/;

/**
 * A service: name, version, typed settings, drivers, and its events. Built by chaining, so the definition reads
 * like the service's table of contents.
 */
export class Service<
  Settings extends TSchema | undefined = undefined,
  Drivers extends DriverMap = DriverMap,
  Api extends object = Record<never, never>,
> {
  readonly info: ServiceInfo;
  readonly description: string | undefined;
  readonly settingsSchema: Settings;
  readonly drivers: Drivers;
  readonly groups: readonly string[];
  /** The service's own CORS policy, or undefined to use the host's. */
  readonly cors: ServiceCors | undefined;
  readonly events: EventDef[] = [];
  readonly emitted = new Map<string, StreamDef>();
  /** The tasks this service runs (`task`), the schedules it fires (`cron`) and where it keeps their jobs (`jobs`). */
  readonly tasks: TaskEventDef[] = [];
  readonly schedules: CronEventDef[] = [];
  jobOptions: JobsOptions = {};
  /** The RPCs this service answers (`rpc`), by name. */
  readonly rpcs = new Map<string, RpcDef>();
  /**
   * Never set: carries the types of the service's HTTP routes (`'GET /customers/:id'`), RPCs (`'rpc lookup'`) and
   * work queues (`'work resize'`) to typed clients (`ctx.client(service)`, `rpcTarget`).
   */
  declare readonly '~api'?: Api;
  /** Stored with their types erased, so that any service is an {@link AnyService}; the methods below type them. */
  readonly setupHooks: ((ctx: ServiceContext) => Awaitable<void>)[] = [];
  readonly shutdownHooks: ((ctx: ServiceContext) => Awaitable<void>)[] = [];

  constructor(options: ServiceOptions<Settings, Drivers>) {
    if (!SERVICE_NAME.test(options.name)) {
      throw definitionError(`service name '${options.name}' must be lower-case words joined by '-'`);
    }
    if (!SEMVER.test(options.version)) {
      throw definitionError(`service '${options.name}' version '${options.version}' is not major.minor.patch`);
    }
    this.info = { name: options.name, version: options.version };
    this.description = options.description;
    this.settingsSchema = options.settings as Settings;
    this.drivers = (options.drivers ?? {}) as Drivers;
    this.groups = options.groups ?? [];
    this.cors = options.cors;
  }

  /** Answers `GET path`. */
  get<P extends string, S extends HttpSchemas>(
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`GET ${P}`, S>> {
    return this.route('GET', path, schemas, handler);
  }

  /** Answers `POST path`. */
  post<P extends string, S extends HttpSchemas>(
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`POST ${P}`, S>> {
    return this.route('POST', path, schemas, handler);
  }

  /** Answers `PUT path`. */
  put<P extends string, S extends HttpSchemas>(
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`PUT ${P}`, S>> {
    return this.route('PUT', path, schemas, handler);
  }

  /** Answers `PATCH path`. */
  patch<P extends string, S extends HttpSchemas>(
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`PATCH ${P}`, S>> {
    return this.route('PATCH', path, schemas, handler);
  }

  /** Answers `DELETE path`. */
  delete<P extends string, S extends HttpSchemas>(
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`DELETE ${P}`, S>> {
    return this.route('DELETE', path, schemas, handler);
  }

  /** Answers `method path`; the verb methods above are shorthands of this. */
  route<M extends HttpMethod, P extends string, S extends HttpSchemas>(
    method: M,
    path: P,
    schemas: S,
    handler: HttpHandler<S, Settings, Drivers>,
  ): Service<Settings, Drivers, Api & Record<`${M} ${P}`, S>> {
    if (!ROUTE.test(path)) throw definitionError(`route '${path}' of service '${this.info.name}' is not a path`);
    const name = `${method} ${path}`;
    if (this.events.some((event) => event.name === name)) {
      throw definitionError(`service '${this.info.name}' defines ${name} twice`);
    }
    const stepNames = (handler as { stepNames?: readonly string[] }).stepNames;
    this.events.push({
      kind: 'http',
      name,
      method,
      path,
      schemas,
      handler: handler as unknown as HttpEventDef['handler'],
      ...(stepNames ? { stepNames } : {}),
    });
    return this as Service<Settings, Drivers, Api & Record<`${M} ${P}`, S>>;
  }

  /**
   * Answers an RPC over the bus's request/reply (NATS, RabbitMQ, Redis; in-process on embedded buses): any one
   * instance gets each request. The input is validated before the handler runs and the output before it is sent; a
   * thrown error goes back to the caller as a typed error reply, never crashing the instance. Callers use
   * `ctx.request(rpcTarget(service, name), input)`.
   */
  rpc<const N extends string, I extends TSchema, O extends TSchema>(
    name: N,
    schemas: RpcSchemas<I, O>,
    handler: (input: Static<I>, ctx: Ctx<Settings, Drivers>) => Awaitable<Static<O>>,
  ): Service<Settings, Drivers, Api & Record<`rpc ${N}`, RpcSchemas<I, O>>> {
    if (!/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$/.test(name)) {
      throw definitionError(`RPC name '${name}' must be dotted lower-case words, like 'lookup' or 'orders.total'`);
    }
    if (this.rpcs.has(name)) throw definitionError(`service '${this.info.name}' defines RPC '${name}' twice`);
    this.rpcs.set(name, {
      kind: 'rpc',
      name,
      schemas: schemas as RpcSchemas,
      handler: async (input, ctx) => handler(input as Static<I>, ctx as unknown as Ctx<Settings, Drivers>),
    });
    return this as Service<Settings, Drivers, Api & Record<`rpc ${N}`, RpcSchemas<I, O>>>;
  }

  /**
   * A work queue: each message sent with `ctx.send(workTarget(service, name), input)` is handled by exactly one
   * instance, stored durably on the bus (stream `<service>.work.<name>`, group `<service>.work`) and acknowledged only
   * after the handler succeeds; failures are retried with backoff, then dead-lettered like any stream's.
   */
  worker<const N extends string, I extends TSchema>(
    name: N,
    options: WorkerOptions<I>,
    handler: (input: Static<I>, ctx: Ctx<Settings, Drivers> & { message: MessageInfo }) => Awaitable<unknown>,
  ): Service<Settings, Drivers, Api & Record<`work ${N}`, { input: I }>> {
    const { input, ...consumer } = options;
    const stream = defineStream(workStreamName(this.info.name, name), input);
    this.on(stream, { ...consumer, group: `${this.info.name}.work` }, handler as never);
    return this as Service<Settings, Drivers, Api & Record<`work ${N}`, { input: I }>>;
  }

  /** Declares the streams this service emits to; `ctx.emit` refuses any other. */
  emits(...streams: StreamDef[]): this {
    for (const stream of streams) this.emitted.set(stream.name, stream);
    return this;
  }

  /**
   * Consumes a stream: the handler runs for each message, which is acknowledged only once it succeeds; failures
   * are retried with backoff, then dead-lettered to `<stream>.dlq`.
   */
  on<S extends TSchema, const O extends ConsumerOptions>(
    stream: StreamDef<S>,
    options: O,
    handler: (
      data: Static<S>,
      ctx: Ctx<Settings, Drivers> & { message: MessageInfo } & InboxTx<Drivers, O>,
    ) => Awaitable<unknown>,
  ): this {
    if (options.inbox !== undefined && this.drivers[options.inbox]?.kind !== 'database') {
      throw definitionError(
        `consumer of ${stream.name} in '${this.info.name}' names inbox '${options.inbox}', which is not one of its database drivers`,
      );
    }
    const group = options.group ?? this.info.name;
    const name = `on ${stream.name} (${group})`;
    if (this.events.some((event) => event.name === name)) {
      throw definitionError(`service '${this.info.name}' consumes ${stream.name} twice in group '${group}'`);
    }
    this.events.push({
      kind: 'consumer',
      name,
      stream,
      group,
      options,
      handler: async (data, ctx) => handler(data as Static<S>, ctx as unknown as Parameters<typeof handler>[1]),
    });
    return this;
  }

  /**
   * Runs a long-lived loop (hopeit's SERVICE event) from start to shutdown. The loop should return when
   * `ctx.signal` aborts; if it throws, it is restarted with backoff.
   */
  loop(name: string, handler: (ctx: Ctx<Settings, Drivers>) => Promise<void>, options: LoopOptions = {}): this {
    const eventName = `loop ${name}`;
    if (this.events.some((event) => event.name === eventName)) {
      throw definitionError(`service '${this.info.name}' defines loop '${name}' twice`);
    }
    this.events.push({ kind: 'loop', name: eventName, options, handler: handler as unknown as LoopDef['handler'] });
    return this;
  }

  /**
   * An operator command, run by `gantry run <service> <name> [--input JSON]` in a host of this service alone (drivers
   * and bus open, no consumers, no HTTP). Its result is printed as JSON.
   */
  command<I extends TSchema | undefined = undefined>(
    name: string,
    options: { description: string; input?: I },
    handler: (input: I extends TSchema ? Static<I> : undefined, ctx: Ctx<Settings, Drivers>) => Promise<unknown>,
  ): this {
    if (!/^[a-z][a-z0-9-]*$/.test(name))
      throw definitionError(`command name '${name}' must be lower-case words joined by '-'`);
    if (this.events.some((event) => event.kind === 'command' && event.name === name)) {
      throw definitionError(`service '${this.info.name}' defines command '${name}' twice`);
    }
    this.events.push({
      kind: 'command',
      name,
      description: options.description,
      input: options.input,
      handler: handler as unknown as CommandDef['handler'],
    });
    return this;
  }

  /**
   * Runs a task: jobs enqueued with `ctx.enqueue(def, input)` by any instance run here or on any other instance, at
   * least once, retried per the task's backoff, then `dead` (and its `onFail` task enqueued). Jobs live in the
   * service's database (see `jobs()`); the handler's context adds `job` and `progress()`.
   *
   * @example
   * svc.task(sendWelcome, async ({ customerId }, ctx) => { await ctx.progress(0.5, 'rendered'); ... });
   * svc.task('reports.build', { input: t.Object({ month: t.String() }), attempts: 5 }, buildReport);
   */
  task<I extends TSchema>(def: TaskDef<I>, handler: TaskHandler<Static<I>, Settings, Drivers>): this;
  task<I extends TSchema>(
    name: string,
    options: TaskOptions<I>,
    handler: TaskHandler<Static<I>, Settings, Drivers>,
  ): this;
  task<I extends TSchema>(
    defOrName: TaskDef<I> | string,
    optionsOrHandler: TaskOptions<I> | TaskHandler<Static<I>, Settings, Drivers>,
    maybeHandler?: TaskHandler<Static<I>, Settings, Drivers>,
  ): this {
    const def: TaskDef =
      typeof defOrName === 'string'
        ? (defineTask(defOrName, optionsOrHandler as TaskOptions<I>) as unknown as TaskDef)
        : (defOrName as unknown as TaskDef);
    const handler = (typeof defOrName === 'string' ? maybeHandler : optionsOrHandler) as TaskHandler<
      Static<I>,
      Settings,
      Drivers
    >;
    if (typeof handler !== 'function')
      throw definitionError(`task '${def.name}' of '${this.info.name}' has no handler`);
    this.requireJobDatabase(`task '${def.name}'`);
    if (this.tasks.some((t) => t.task.name === def.name)) {
      throw definitionError(`service '${this.info.name}' defines task '${def.name}' twice`);
    }
    this.tasks.push({
      kind: 'task',
      name: `task ${def.name}`,
      task: def,
      handler: async (input, ctx) => handler(input as Static<I>, ctx as unknown as Parameters<typeof handler>[1]),
    });
    return this;
  }

  /**
   * Fires `handler` on a cron schedule (five fields, or six with seconds first; UTC unless `timezone`), once per tick
   * across every instance of the service: each tick is recorded in the service's database and runs as a job.
   *
   * @example
   * svc.cron('0 3 * * *', async (ctx) => purgeOld(ctx), { timezone: 'Europe/Paris', missed: 'once' });
   */
  cron(pattern: string, handler: CronHandler<Settings, Drivers>, options: CronOptions = {}): this {
    const schedule = options.name ?? (options.timezone ? `${pattern} ${options.timezone}` : pattern);
    this.requireJobDatabase(`schedule '${schedule}'`);
    if (this.schedules.some((c) => c.schedule === schedule)) {
      throw definitionError(
        `service '${this.info.name}' defines schedule '${schedule}' twice; give one a name ({ name: '...' })`,
      );
    }
    // Built by hand rather than with defineTask: the name `cron:<schedule>` is outside the names users may give tasks,
    // so a schedule's task can never clash with one of theirs.
    const task: TaskDef = {
      kind: 'task',
      name: `cron:${schedule}`,
      options: {
        input: CRON_INPUT,
        attempts: options.attempts ?? 1,
        concurrency: 1,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.timeout ? { timeout: options.timeout } : {}),
      },
    };
    this.schedules.push({
      kind: 'cron',
      schedule,
      pattern,
      options,
      task,
      handler: async (input, ctx) => {
        const tick: TickInfo = { schedule, scheduledAt: new Date((input as { scheduledAt: string }).scheduledAt) };
        return handler({ ...ctx, tick } as unknown as Parameters<typeof handler>[0]);
      },
    });
    return this;
  }

  /** Sets where this service keeps its jobs and how its workers pace themselves (see {@link JobsOptions}). */
  jobs(options: JobsOptions): this {
    if (options.database !== undefined && this.drivers[options.database]?.kind !== 'database') {
      throw definitionError(
        `jobs of '${this.info.name}' name database '${options.database}', which is not one of its database drivers`,
      );
    }
    this.jobOptions = { ...this.jobOptions, ...options };
    return this;
  }

  private requireJobDatabase(what: string): void {
    if (!Object.values(this.drivers).some((driver) => driver.kind === 'database')) {
      throw definitionError(
        `${what} of '${this.info.name}' needs a database driver to keep its jobs in; add drivers: { db: database(...) }`,
      );
    }
  }

  /** Runs once at start, after drivers open and before consumers start and the server listens. */
  setup(hook: (ctx: SvcCtx<Settings, Drivers>) => Awaitable<void>): this {
    this.setupHooks.push(hook as (ctx: ServiceContext) => Awaitable<void>);
    return this;
  }

  /** Runs once at stop, after in-flight work ended and before drivers close. */
  shutdown(hook: (ctx: SvcCtx<Settings, Drivers>) => Awaitable<void>): this {
    this.shutdownHooks.push(hook as (ctx: ServiceContext) => Awaitable<void>);
    return this;
  }

  /** Applies a plugin: a function that adds events, streams or hooks. */
  use(plugin: ServicePlugin): this {
    plugin(this as unknown as Service<TSchema | undefined, DriverMap>);
    return this;
  }
}

/** An HTTP handler of a service, typed from its schemas, settings and drivers. */
export type HttpHandler<S extends HttpSchemas, Settings, Drivers extends DriverMap> = (
  input: HttpInput<S>,
  ctx: Ctx<Settings, Drivers>,
) => Awaitable<HttpResult<S>>;

/** A task handler of a service, typed from its input, settings and drivers. */
export type TaskHandler<Input, Settings, Drivers extends DriverMap> = (
  input: Input,
  ctx: Ctx<Settings, Drivers> & TaskContextExtras,
) => Awaitable<unknown>;

/** A schedule's handler: its context adds the tick it runs for. */
export type CronHandler<Settings, Drivers extends DriverMap> = (
  ctx: Ctx<Settings, Drivers> & TaskContextExtras & { tick: TickInfo },
) => Awaitable<unknown>;

/** The input of a schedule's job: the tick it runs for. */
const CRON_INPUT = Type.Object({ scheduledAt: Type.String() });

/** A service whose settings and drivers are not known here (host internals, plugins). */
export type AnyService = Service<TSchema | undefined, DriverMap, object>;

/**
 * Defines a service.
 *
 * @example
 * export default service({ name: 'customers', version: '1.0.0', settings: t.Object({ pageSize: t.Integer({ default: 20 }) }) })
 *   .get('/customers/:id', { params: t.Object({ id: t.String({ format: 'uuid' }) }), response: Customer }, getCustomer);
 */
export function service<
  Settings extends TSchema | undefined = undefined,
  Drivers extends DriverMap = Record<never, never>,
>(options: ServiceOptions<Settings, Drivers>): Service<Settings, Drivers> {
  return new Service(options);
}

function definitionError(message: string): GantryError {
  return new GantryError('GANTRY_ERR_SERVICE_DEFINITION', message);
}
