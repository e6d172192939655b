import { hostname } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { DestinationStream } from 'pino';
import { Value } from 'typebox/value';
import type { AuthInput, AuthPlan } from '../auth/rules.ts';
import { HostSecurity, operationSecurity } from '../auth/security.ts';
import type { Bus, CheckResult, Subscription } from '../bus/bus.ts';
import { startConsumer } from '../bus/consumer.ts';
import { CounterBook } from '../bus/counters.ts';
import { ensureDeadLetterGroups } from '../bus/dead-letters.ts';
import type { Envelope } from '../bus/envelope.ts';
import { resolveBus } from '../bus/resolve.ts';
import { HostCalls } from '../calls/calls.ts';
import { injectSender } from '../calls/http-client.ts';
import type { TargetStats } from '../calls/policy.ts';
import { parseDeadline } from '../calls/wire.ts';
import { type GantryEnv, resolveEnv } from '../config/env.ts';
import { type ConfigTree, loadConfig, type ResolvedConfig } from '../config/load.ts';
import { maskUrl } from '../config/mask.ts';
import { secretValues } from '../config/secrets.ts';
import { GantryError, toGantryError } from '../errors/gantry-error.ts';
import { type AsyncApiDocument, buildAsyncApi } from '../http/asyncapi.ts';
import { registerDocsUi } from '../http/docs.ts';
import { type EdgeOptions, openRateLimitRedis, serviceCorsRoutes } from '../http/edges.ts';
import { buildOpenApi, type OpenApiDocument, type OpenApiSecurity } from '../http/openapi.ts';
import { answerStatusOf, createHttpServer, type HttpRoute } from '../http/server.ts';
import { openServiceJobs, type ServiceJobs } from '../jobs/runtime.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { claimInInbox } from '../outbox/inbox.ts';
import { OutboxRelay } from '../outbox/outbox.ts';
import { ensureMessagingTables, type SqlRunner } from '../outbox/tables.ts';
import { validatorFor } from '../schema/validate.ts';
import type { ServiceInfo } from '../service/context.ts';
import { type Metrics, noopMetrics } from '../service/metrics.ts';
import type { AnyService, CommandDef, ConsumerDef, LoopDef } from '../service/service.ts';
import { continueTracking } from '../tracking/trace-context.ts';
import { RunDeadlines } from './deadlines.ts';
import { type EventRun, HookRegistry } from './hooks.ts';
import type { HostInfo } from './info.ts';
import { type RunningLoop, runLoop } from './loops.ts';
import type { HostPlugin, HostPluginApi } from './plugin.ts';
import { runEvent } from './run-event.ts';
import { ServiceRuntime } from './runtime.ts';
import { selectServices } from './select.ts';
import { registerStreamAdmin, streamTopology } from './stream-admin.ts';
import { retryWhileBusDown } from './wait-for-bus.ts';

/** Options of {@link createHost}. */
export interface HostOptions {
  services: readonly AnyService[];
  /** Run only these services, by name or group; all when omitted. */
  only?: readonly string[];
  /** Defaults to `GANTRY_ENV`, then `dev`. */
  env?: GantryEnv;
  /** The project folder holding `config/` and `.env`; defaults to the working directory. */
  root?: string;
  /** Values that win over every config source. */
  config?: ConfigTree;
  /** The environment variables to read; defaults to `process.env`. */
  environment?: Readonly<Record<string, string | undefined>>;
  plugins?: readonly HostPlugin[];
  /** Where log lines go; stdout by default. */
  logDestination?: DestinationStream;
  /** Keep embedded data in memory rather than under the data folder (the default in the test env). */
  inMemory?: boolean;
  /** Title of the OpenAPI document. */
  title?: string;
  /** Where a browser asking for `/` is sent (a web app served by a plugin); `/` answers JSON to everyone else. */
  home?: string;
  /** Start stream consumers and service loops (default true); `gantry run` starts a host without them. */
  consumers?: boolean;
}

/** The lifecycle states of a host. */
export type HostState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** How a stop ended. */
export interface StopResult {
  /** False when the shutdown deadline was hit before all work finished. */
  clean: boolean;
  durationMs: number;
}

/**
 * A host runs one or several services in one process behind one HTTP server and one OpenAPI document. It owns
 * everything stateful (config, logger, bus, drivers): two hosts in one process share nothing.
 *
 * Start order: config → logger → bus → drivers (and migrations in dev/test) → setup hooks → consumers and loops →
 * HTTP routes. Stop order: readiness 503 → stop accepting and finish in-flight requests → stop consumers and loops
 * → shutdown hooks → close bus → close drivers.
 */
export class Host {
  readonly services: readonly AnyService[];
  readonly env: GantryEnv;
  readonly counters = new CounterBook();
  private readonly options: HostOptions;
  private readonly hooks: HookRegistry;
  private readonly stopping = new AbortController();
  /** The event runs in flight: their timeouts, and the shutdown deadline that aborts them all. */
  private readonly inFlight = new RunDeadlines();
  private readonly checks = new Map<string, () => Promise<CheckResult>>();
  private readonly extraRoutes: ((app: FastifyInstance) => void)[] = [];
  /** Gives each service its `ctx.metrics`; set by a metrics plugin. */
  private metricsFor: ((service: ServiceInfo) => Metrics) | undefined;
  private readonly runtimes: ServiceRuntime[] = [];
  private readonly subscriptions: Subscription[] = [];
  private readonly loops: RunningLoop[] = [];
  private readonly relays: OutboxRelay[] = [];
  /** The pending nudge of the outbox relays, while one is set. */
  private outboxNudge: NodeJS.Timeout | undefined;
  private readonly jobRuntimes: ServiceJobs[] = [];
  private state: HostState = 'created';
  /** Calls to other services: clients, policies, RPC responders, the registry entry. */
  private calls: HostCalls | undefined;
  private startedAt = 0;
  private resolved: ResolvedConfig | undefined;
  private logger: Logger | undefined;
  private bus: Bus | undefined;
  private busUrl = '';
  private app: FastifyInstance | undefined;
  private security: HostSecurity | undefined;
  private rateLimitRedis: { quit(): Promise<unknown> } | undefined;
  private stopPromise: Promise<StopResult> | undefined;

  constructor(options: HostOptions) {
    this.options = options;
    this.env = options.env ?? resolveEnv();
    this.services = selectServices(options.services, options.only);
    this.hooks = new HookRegistry((hook, error) => this.log.error({ err: error, hook }, 'hook failed'));
  }

  /** The host's root logger (available once started). */
  get log(): Logger {
    if (!this.logger)
      this.logger = createLogger({
        env: this.env,
        ...(this.options.logDestination ? { destination: this.options.logDestination } : {}),
      });
    return this.logger;
  }

  /** The resolved config (available once started). */
  get config(): ResolvedConfig {
    if (!this.resolved)
      throw new GantryError('GANTRY_ERR_HOST_STATE', 'the host has not resolved its config yet; call start()');
    return this.resolved;
  }

  /** The current lifecycle state. */
  get status(): HostState {
    return this.state;
  }

  /** The HTTP server (available once started). */
  get http(): FastifyInstance {
    if (!this.app) throw new GantryError('GANTRY_ERR_HOST_STATE', 'the host has not started; call start()');
    return this.app;
  }

  /** The host's bus (available once started). */
  get messageBus(): Bus {
    if (!this.bus) throw new GantryError('GANTRY_ERR_HOST_STATE', 'the host has not started; call start()');
    return this.bus;
  }

  /** The runtime (settings, drivers) of one hosted service. */
  runtime(name: string): ServiceRuntime {
    const runtime = this.runtimes.find((r) => r.name === name);
    if (!runtime) throw new GantryError('GANTRY_ERR_HOST_STATE', `service '${name}' is not running in this host`);
    return runtime;
  }

  /** Resolves config, opens drivers, runs setup hooks, starts consumers and loops, and builds the HTTP server. */
  async start(): Promise<void> {
    if (this.state !== 'created')
      throw new GantryError('GANTRY_ERR_HOST_STATE', `cannot start a host that is ${this.state}`);
    this.state = 'starting';
    this.startedAt = Date.now();
    try {
      await this.startInner();
    } catch (error) {
      await this.release();
      this.state = 'stopped';
      throw error;
    }
    this.state = 'running';
    await this.hooks.run('onReady');
  }

  private async startInner(): Promise<void> {
    this.resolved = loadConfig(
      this.services.map((svc) => ({
        name: svc.info.name,
        settings: svc.settingsSchema,
        drivers: Object.keys(svc.drivers),
      })),
      {
        env: this.env,
        ...(this.options.root ? { root: this.options.root } : {}),
        ...(this.options.environment ? { environment: this.options.environment } : {}),
        ...(this.options.config ? { overrides: this.options.config } : {}),
      },
    );
    const host = this.resolved.host;
    this.logger = createLogger({
      env: this.env,
      level: host.logLevel,
      scrub: secretValues(this.resolved, Object.fromEntries(this.services.map((s) => [s.info.name, s.settingsSchema]))),
      ...(this.options.logDestination ? { destination: this.options.logDestination } : {}),
    });
    for (const plugin of this.options.plugins ?? []) await plugin.register(this.pluginApi());
    await this.hooks.run('onStart');

    const refuseEmbedded = this.env === 'prod' && !host.allowEmbedded;
    const inMemory = this.options.inMemory ?? this.env === 'test';
    const root = this.options.root ?? process.cwd();
    const busUrl = host.bus || (inMemory ? 'memory:' : `pglite:${path.resolve(root, host.dataDir, 'bus')}`);
    if (refuseEmbedded && (busUrl.startsWith('memory:') || busUrl.startsWith('pglite:'))) {
      throw embeddedInProd(`the bus '${busUrl}' is embedded in this process; set GANTRY_BUS to a broker URL`);
    }
    this.bus = await retryWhileBusDown(
      'opening the bus',
      () => resolveBus(busUrl, { instanceId: `${hostname()}-${process.pid}` }),
      {
        timeoutMs: host.busConnectTimeoutMs,
        log: this.log,
        policy: 'any-but-permanent',
        context: { bus: maskUrl(busUrl) },
      },
    );
    this.busUrl = busUrl;
    this.calls = this.openCalls(busUrl);
    await this.calls.open();
    for (const svc of this.services) {
      const runtime = new ServiceRuntime(svc, this.resolved.services[svc.info.name] ?? { settings: {}, drivers: {} }, {
        env: this.env,
        log: this.log,
        bus: () => this.messageBus,
        hooks: this.hooks,
        stopping: this.stopping.signal,
        nudgeOutbox: () => this.nudgeOutbox(),
        metrics: this.metricsFor?.(svc.info) ?? noopMetrics,
        counters: this.counters,
        calls: this.calls,
      });
      this.runtimes.push(runtime);
      for (const [alias, driver] of Object.entries(svc.drivers)) {
        const handle = await driver.open({
          service: svc.info.name,
          alias,
          env: this.env,
          config: driverConfig(driver.kind, this.env, host.databaseUrl, runtime.config.drivers[alias]),
          dataDir: inMemory ? null : path.resolve(root, host.dataDir, svc.info.name),
          log: this.log.child({ service: svc.info.name, driver: alias }),
        });
        runtime.handles.set(alias, handle);
        runtime.clients[alias] = handle.client;
        if (refuseEmbedded && handle.embedded) {
          throw embeddedInProd(
            `driver '${alias}' of service '${svc.info.name}' runs embedded; configure a server URL for it`,
          );
        }
      }
    }
    this.security = this.secure();
    for (const runtime of this.runtimes) await this.prepareMessaging(runtime);
    for (const runtime of this.runtimes) await this.openJobs(runtime);
    for (const runtime of this.runtimes) {
      for (const hook of runtime.service.setupHooks) await hook(runtime.serviceContext());
    }
    for (const runtime of this.options.consumers === false ? [] : this.runtimes) {
      for (const event of runtime.service.events) {
        if (event.kind === 'consumer') {
          this.subscriptions.push(
            await retryWhileBusDown(`subscribing ${event.name}`, () => this.startConsumer(runtime, event), {
              timeoutMs: host.busConnectTimeoutMs,
              log: this.log,
              policy: 'unavailable-only',
            }),
          );
        }
        if (event.kind === 'loop') this.loops.push(this.startLoop(runtime, event));
      }
    }
    if (this.options.consumers !== false) for (const jobs of this.jobRuntimes) await jobs.start();
    if (this.options.consumers !== false) await this.calls.serve(this.runtimes);
    if (this.options.consumers !== false) {
      const consumed = [...streamTopology(this.services)]
        .filter(([, groups]) => groups.size > 0)
        .map(([stream]) => stream);
      await retryWhileBusDown(
        'creating the dead-letter groups',
        () => ensureDeadLetterGroups(this.messageBus, consumed, this.consumerName()),
        { timeoutMs: host.busConnectTimeoutMs, log: this.log, policy: 'unavailable-only' },
      );
    }
    this.app = await this.buildHttp();
    await this.app.ready();
    this.log.info(
      { services: this.serviceInfos(), bus: maskUrl(this.busUrl) },
      `host started with ${this.services.length} service(s)`,
    );
  }

  /**
   * Creates the outbox and inbox tables in the databases of services that emit or consume through an inbox, and
   * starts one outbox relay per such database.
   */
  private async prepareMessaging(runtime: ServiceRuntime): Promise<void> {
    const inboxAliases = new Set(
      runtime.service.events.flatMap((event) =>
        event.kind === 'consumer' && event.options.inbox ? [event.options.inbox] : [],
      ),
    );
    for (const [alias, driver] of Object.entries(runtime.service.drivers)) {
      if (driver.kind !== 'database') continue;
      const emits = runtime.service.emitted.size > 0;
      if (!emits && !inboxAliases.has(alias)) continue;
      const db = (runtime.clients[alias] as { db: SqlRunner }).db;
      await ensureMessagingTables(db, runtime.name);
      if (!emits) continue;
      const relay = new OutboxRelay({
        db,
        service: runtime.name,
        bus: this.messageBus,
        log: this.log,
        keepSent: this.resolved?.host.outboxKeepSent ?? false,
        onRelayed: (envelope) => runtime.published(envelope),
      });
      relay.start();
      this.relays.push(relay);
    }
  }

  /** Opens the jobs of a service with tasks or schedules (their tables in its database) and checks them for readiness. */
  private async openJobs(runtime: ServiceRuntime): Promise<void> {
    const jobs = await openServiceJobs(runtime.service, runtime.clients, {
      instanceId: `${hostname()}-${process.pid}`,
      log: this.log,
      hooks: this.hooks,
      inFlight: this.inFlight,
      context: (event, tracking, log, signal) => runtime.eventContext(event, tracking, log, signal),
    });
    if (jobs === undefined) return;
    runtime.jobs = jobs;
    this.jobRuntimes.push(jobs);
    this.checks.set(`${runtime.name}.jobs`, () => jobs.check());
  }

  private nudgeOutbox(): void {
    // The emitting transaction has not committed yet when emit returns: look again shortly after. Emits close
    // together share one timer.
    if (this.outboxNudge !== undefined) return;
    this.outboxNudge = setTimeout(() => {
      this.outboxNudge = undefined;
      for (const relay of this.relays) relay.nudge();
    }, 5).unref();
  }

  /**
   * Resolves who may call each HTTP event (its own `auth` over the host default) and builds the verifiers. In prod an
   * event with neither stops start-up; elsewhere such events run public and are named in the log.
   */
  private secure(): HostSecurity {
    const host = this.config.host;
    const security = HostSecurity.create({
      env: this.env,
      config: host.auth,
      ...(host.admin.protect !== undefined ? { adminProtect: host.admin.protect } : {}),
      events: this.services.flatMap((svc) =>
        svc.events.flatMap((event) =>
          event.kind === 'http' ? [{ service: svc.info.name, event: event.name, auth: event.schemas.auth }] : [],
        ),
      ),
    });
    if (security.implicitlyPublic.length > 0) {
      this.log.info(
        { events: security.implicitlyPublic },
        'these HTTP events declare no auth and run public; prod refuses to start with them',
      );
    }
    return security;
  }

  /** The edges of the HTTP server from the host settings (the Redis client of rate limits is opened here). */
  private async edges(): Promise<EdgeOptions> {
    const host = this.config.host;
    const redisUrl = host.rateLimit.redisUrl;
    if (redisUrl) this.rateLimitRedis = await openRateLimitRedis(redisUrl);
    return {
      env: this.env,
      cors: { ...host.cors, services: serviceCorsRoutes(this.services, host.cors.services) },
      securityHeaders: host.securityHeaders,
      rateLimit: {
        max: host.rateLimit.max,
        windowMs: host.rateLimit.windowMs,
        ...(this.rateLimitRedis
          ? { redis: this.rateLimitRedis as NonNullable<EdgeOptions['rateLimit']['redis']> }
          : {}),
      },
      limits: host.limits,
      timeouts: host.timeouts,
      trustProxy: host.trustProxy,
    };
  }

  private async buildHttp(): Promise<FastifyInstance> {
    const routes: HttpRoute<ServiceRuntime>[] = [];
    for (const runtime of this.runtimes) {
      for (const event of runtime.service.events) if (event.kind === 'http') routes.push({ owner: runtime, event });
    }
    const host = this.config.host;
    const security = this.security as HostSecurity;
    const edges = await this.edges();
    // What each route's runs share, worked out once per route rather than per request: its auth plan, its own
    // timeout and how its answer picks its status.
    const prepared = new Map<HttpRoute<ServiceRuntime>, PreparedRoute>(
      routes.map((route) => [
        route,
        {
          plan: security.plan(route.owner.name, route.event.name),
          timeoutMs: route.event.schemas.timeout ?? host.eventTimeoutMs,
          statusOf: answerStatusOf(route.event.schemas),
        },
      ]),
    );
    return createHttpServer<ServiceRuntime>({
      routes,
      edges,
      security: {
        host: security,
        planOf: (route) => ({ plan: (prepared.get(route) as PreparedRoute).plan, service: route.owner.name }),
      },
      bodyLimitBytes: host.bodyLimitBytes,
      log: this.log,
      isStopping: () => this.state === 'stopping',
      run: (route, input, { tracking, auth }) => {
        const runtime = route.owner;
        const { plan, timeoutMs: ownTimeout, statusOf } = prepared.get(route) as PreparedRoute;
        // A caller's remaining time (x-gantry-deadline) caps the event's own timeout: work past it is wasted.
        const callerDeadline = (input.headers as Record<string, unknown>)['x-gantry-deadline'];
        const timeoutMs =
          callerDeadline === undefined ? ownTimeout : Math.min(ownTimeout, parseDeadline(callerDeadline) ?? ownTimeout);
        const deadline = Date.now() + timeoutMs;
        return runEvent(
          {
            service: runtime.service.info,
            event: route.event.name,
            kind: 'http',
            tracking,
            timeoutMs,
            inFlight: this.inFlight,
            log: this.log,
            subject: auth?.subject,
            hooks: this.hooks,
            context: (log, signal) => runtime.eventContext(route.event.name, tracking, log, signal, deadline, auth),
          },
          plan.allow
            ? async (ctx) => {
                await security.authorize(plan, auth, input as AuthInput);
                return route.event.handler(input, ctx);
              }
            : (ctx) => route.event.handler(input, ctx),
          statusOf,
        );
      },
      extraRoutes: (app) => {
        app.get('/health/live', async () => ({ status: 'ok' }));
        app.get('/health/ready', async (_request, reply) => {
          const report = await this.readiness();
          return reply.code(report.ready ? 200 : 503).send(report);
        });
        app.get('/', async (request, reply) => {
          // A browser asking for a page goes to the host's home page, when it has one; everyone else gets JSON.
          const home = this.options.home;
          if (home && /\btext\/html\b/.test(request.headers.accept ?? '')) return reply.redirect(home, 302);
          return {
            services: this.serviceInfos(),
            env: this.env,
            uptimeSeconds: this.uptimeSeconds(),
            startedAt: new Date(this.startedAt).toISOString(),
          };
        });
        if (host.docs) {
          // Built at the first request, once plugins (a browser login's session scheme) have told security theirs.
          let document: OpenApiDocument | undefined;
          app.get('/openapi.json', async () => {
            document ??= this.openApi();
            return document;
          });
          const streams = this.asyncApi();
          app.get('/asyncapi.json', async () => streams);
          registerDocsUi(app, this.title());
        }
        registerStreamAdmin(app, {
          services: this.services,
          bus: () => this.messageBus,
          counters: this.counters,
          consumerName: this.consumerName(),
        });
        for (const register of this.extraRoutes) register(app);
      },
    });
  }

  /** The OpenAPI 3.1 document of every hosted HTTP event. */
  openApi(): OpenApiDocument {
    const security = this.security;
    const described: OpenApiSecurity | undefined = security && {
      schemes: security.securitySchemes(),
      of: (service, event) => operationSecurity(security.plan(service, event.name)),
    };
    return buildOpenApi(this.services, {
      title: this.title(),
      version:
        this.services
          .map((s) => s.info.version)
          .sort()
          .at(-1) ?? '0.0.0',
      ...(described ? { security: described } : {}),
    });
  }

  /** The AsyncAPI 3.0 document of every stream the hosted services emit and consume. */
  asyncApi(): AsyncApiDocument {
    return buildAsyncApi(this.services, {
      title: this.title(),
      version:
        this.services
          .map((s) => s.info.version)
          .sort()
          .at(-1) ?? '0.0.0',
    });
  }

  private title(): string {
    return this.options.title ?? this.services.map((s) => s.info.name).join(' + ');
  }

  private async startConsumer(runtime: ServiceRuntime, consumer: ConsumerDef): Promise<Subscription> {
    const host = this.config.host;
    return startConsumer(consumer, {
      bus: this.messageBus,
      counters: this.counters,
      consumerName: `${hostname()}-${process.pid}-${runtime.name}`,
      maxMessageBytes: host.maxMessageBytes,
      handle: async (def, envelope, attempt) => {
        const tracking = continueTracking({
          ...(envelope.requestid !== undefined ? { requestId: envelope.requestid } : {}),
          ...(envelope.traceparent !== undefined ? { traceparent: envelope.traceparent } : {}),
          ...(envelope.tracestate !== undefined ? { tracestate: envelope.tracestate } : {}),
          caller: envelope.source,
        });
        const message = {
          id: envelope.id,
          stream: envelope.type,
          attempt,
          source: envelope.source,
          time: envelope.time,
          ...(envelope.subject !== undefined ? { key: envelope.subject } : {}),
        };
        await runEvent(
          {
            service: runtime.service.info,
            event: def.name,
            kind: 'consumer',
            tracking,
            timeoutMs: def.options.timeout ?? host.eventTimeoutMs,
            inFlight: this.inFlight,
            log: this.log,
            hooks: this.hooks,
            context: (log, signal) => ({
              ...runtime.eventContext(
                def.name,
                tracking,
                log,
                signal,
                Date.now() + (def.options.timeout ?? host.eventTimeoutMs),
              ),
              message,
              envelope,
            }),
            fields: { messageId: envelope.id, attempt },
          },
          (ctx) =>
            def.options.inbox === undefined
              ? def.handler(envelope.data, ctx as ConsumerContext)
              : this.handleOnce(runtime, def, envelope, ctx as ConsumerContext),
        );
      },
      onDeadLetter: (letter) => {
        this.log.warn(
          { stream: letter.stream, group: letter.group, reason: letter.reason, messageId: letter.original?.id },
          'message dead-lettered',
        );
        if (this.hooks.has('onDeadLetter')) {
          this.hooks.emit('onDeadLetter', {
            stream: letter.stream,
            group: letter.group,
            reason: letter.reason,
            envelope: letter.original,
          });
        }
      },
      onSettleError: (error) =>
        this.log.error(
          { err: error, stream: consumer.stream.name },
          'could not settle a message; the broker will redeliver it',
        ),
    });
  }

  /**
   * Runs an inbox consumer's handler in a transaction that also records the message id; a message already recorded
   * (a redelivery) is skipped, so its effects happen once.
   */
  private async handleOnce(
    runtime: ServiceRuntime,
    def: ConsumerDef,
    envelope: Envelope,
    ctx: ConsumerContext,
  ): Promise<void> {
    const alias = def.options.inbox as string;
    const db = (runtime.clients[alias] as { db: SqlRunner }).db;
    await db.transaction(async (tx) => {
      if (!(await claimInInbox(tx, runtime.name, def.group, def.stream.name, envelope.id))) {
        ctx.log.info({ messageId: envelope.id }, 'IGNORED: already processed');
        return;
      }
      await def.handler(envelope.data, { ...ctx, tx } as ConsumerContext);
    });
  }

  private startLoop(runtime: ServiceRuntime, loop: LoopDef): RunningLoop {
    return runLoop(loop, this.stopping.signal, this.log, async () => {
      const tracking = continueTracking();
      const log = this.log.child({
        service: runtime.name,
        version: runtime.service.info.version,
        event: loop.name,
        requestId: tracking.requestId,
      });
      // Each run of a loop (until it returns or crashes) is an event to the observer hooks, so metrics count restarts
      // and error reporting sees crashes.
      const run: EventRun = {
        service: runtime.service.info,
        event: loop.name,
        kind: 'loop',
        tracking,
        startedAt: Date.now(),
      };
      if (this.hooks.has('onEventStart')) this.hooks.emit('onEventStart', run);
      log.info('START');
      try {
        await loop.handler(runtime.eventContext(loop.name, tracking, log, this.stopping.signal));
        run.outcome = 'succeeded';
      } catch (error) {
        run.outcome = 'failed';
        run.status = toGantryError(error).status;
        run.error = error;
        throw error;
      } finally {
        run.durationMs = Date.now() - run.startedAt;
        if (this.hooks.has('onEventEnd')) this.hooks.emit('onEventEnd', run);
      }
      log.info('DONE');
    });
  }

  /** Runs an operator command of a hosted service as an event; resolves to what it returned. */
  async runCommand(serviceName: string, commandName: string, input: unknown): Promise<unknown> {
    const runtime = this.runtime(serviceName);
    const command = runtime.service.events.find((e): e is CommandDef => e.kind === 'command' && e.name === commandName);
    if (!command) {
      const known = runtime.service.events.filter((e) => e.kind === 'command').map((e) => e.name);
      throw new GantryError(
        'GANTRY_ERR_SERVICE_DEFINITION',
        `service '${serviceName}' has no command '${commandName}'; it has: ${known.join(', ') || 'none'}`,
      );
    }
    if (command.input) {
      const validator = validatorFor(command.input);
      const withDefaults = Value.Default(command.input, structuredClone(input ?? {}));
      if (!validator.check(withDefaults)) {
        throw new GantryError('GANTRY_ERR_HTTP_VALIDATION', `the input of '${commandName}' is invalid`, {
          details: validator.problems(withDefaults),
        });
      }
      input = withDefaults;
    }
    const tracking = continueTracking();
    const value = await runEvent(
      {
        service: runtime.service.info,
        event: `command ${commandName}`,
        kind: 'command',
        tracking,
        timeoutMs: 24 * 3_600_000,
        inFlight: this.inFlight,
        log: this.log,
        hooks: this.hooks,
        context: (log, signal) => runtime.eventContext(`command ${commandName}`, tracking, log, signal),
      },
      (ctx) => command.handler(input, ctx),
    );
    return value;
  }

  /** How this process names itself to brokers that track consumers. */
  private consumerName(): string {
    return `${hostname()}-${process.pid}`;
  }

  /** The readiness report: every driver, the bus, and the checks plugins added. */
  async readiness(): Promise<{ ready: boolean; state: HostState; checks: Record<string, CheckResult> }> {
    const checks: Record<string, CheckResult> = {};
    if (this.bus) checks.bus = await safeCheck(() => this.messageBus.check());
    if (this.calls) checks.calls = await safeCheck(() => (this.calls as HostCalls).check());
    for (const runtime of this.runtimes) {
      for (const [alias, handle] of runtime.handles) {
        checks[`${runtime.name}.${alias}`] = await safeCheck(async () => {
          await handle.check();
          return { ok: true };
        });
      }
    }
    for (const [name, check] of this.checks) checks[name] = await safeCheck(check);
    checks.consumers =
      this.state === 'running'
        ? { ok: true, detail: `${this.subscriptions.length} subscribed` }
        : { ok: false, detail: this.state };
    const ready = this.state === 'running' && Object.values(checks).every((c) => c.ok);
    return { ready, state: this.state, checks };
  }

  /** Starts listening; returns the address. `PORT` 0 picks a free port. */
  async listen(): Promise<string> {
    const host = this.config.host;
    const address = await this.http.listen({ port: host.port, host: host.address });
    this.log.info({ address, docs: host.docs ? `${address}/docs` : undefined }, 'listening');
    await this.calls?.register(address, this.runtimes);
    return address;
  }

  /** The targets this host has called: circuit breaker state, calls under way, requests and retries. */
  callStats(): TargetStats[] {
    return this.calls?.stats() ?? [];
  }

  /** The live instances in the registry (`gantry services`), of one service or all; empty without a registry. */
  async liveInstances(service?: string): Promise<import('../calls/registry.ts').InstanceRecord[]> {
    return this.calls ? this.calls.instances(service) : [];
  }

  private openCalls(busUrl: string): HostCalls {
    const host = this.config.host;
    return new HostCalls({
      config: host.calls,
      ...(host.auth.serviceSecret ? { serviceSecret: host.auth.serviceSecret } : {}),
      ...(host.auth.servicePreviousSecret ? { servicePreviousSecret: host.auth.servicePreviousSecret } : {}),
      serviceTokenMaxAgeSeconds: host.auth.serviceTokenMaxAgeSeconds,
      busUrl,
      bus: () => this.messageBus,
      log: this.log,
      hooks: this.hooks,
      inFlight: this.inFlight,
      eventTimeoutMs: host.eventTimeoutMs,
      hosted: this.services.map((s) => s.info.name),
      inject: injectSender((options) => this.http.inject(options)),
      published: (service, envelope) => this.runtime(service).published(envelope),
    });
  }

  /** Sends a request to the host without a socket (tests). */
  inject(options: InjectOptions | string): Promise<LightMyRequestResponse> {
    return this.http.inject(options);
  }

  /**
   * Stops gracefully within the host's `shutdownTimeoutMs`: readiness turns 503 at once, new requests are refused,
   * in-flight work finishes, then consumers, loops, shutdown hooks, bus and drivers stop in that order.
   */
  stop(): Promise<StopResult> {
    this.stopPromise ??= this.stopInner();
    return this.stopPromise;
  }

  private async stopInner(): Promise<StopResult> {
    const began = performance.now();
    if (this.state === 'created' || this.state === 'stopped') {
      this.state = 'stopped';
      return { clean: true, durationMs: 0 };
    }
    this.state = 'stopping';
    const timeoutMs = this.resolved?.host.shutdownTimeoutMs ?? 10_000;
    this.log.info({ timeoutMs }, 'stopping');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), timeoutMs);
    });
    const drained = this.drain().then(() => 'drained' as const);
    const outcome = await Promise.race([drained, deadline]);
    if (outcome === 'deadline') {
      this.log.error({ timeoutMs }, 'shutdown deadline reached; aborting work still running');
      const reason = new GantryError('GANTRY_ERR_EVENT_ABORTED', 'aborted: the host reached its shutdown deadline');
      this.inFlight.abortAll(reason);
      // Give aborted handlers a moment to unwind, then release resources regardless.
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
    clearTimeout(timer);
    await this.release();
    await this.hooks.run('onStop');
    this.state = 'stopped';
    const durationMs = Math.round(performance.now() - began);
    this.log.info({ durationMs, clean: outcome === 'drained' }, 'stopped');
    return { clean: outcome === 'drained', durationMs };
  }

  /** Finishes in-flight work: HTTP first (no new requests), then consumers and loops, then shutdown hooks. */
  private async drain(): Promise<void> {
    this.stopping.abort();
    // Out of the registry first, so callers stop picking this instance; RPCs in hand are answered.
    await this.calls?.stopServing();
    const grace = this.resolved?.host.stopGraceMs ?? 0;
    if (grace > 0) await new Promise((resolve) => setTimeout(resolve, grace));
    if (this.app) await this.app.close();
    await Promise.all([
      ...this.subscriptions.splice(0).map((s) => s.stop()),
      ...this.jobRuntimes.splice(0).map((jobs) => jobs.stop()),
    ]);
    await Promise.all(this.loops.splice(0).map((l) => l.finished));
    await Promise.all(this.relays.splice(0).map((r) => r.stop()));
    for (const runtime of this.runtimes) {
      for (const hook of runtime.service.shutdownHooks) {
        try {
          await hook(runtime.serviceContext());
        } catch (error) {
          this.log.error({ err: error, service: runtime.name }, 'shutdown hook failed');
        }
      }
    }
  }

  /** Closes the bus and every driver; safe to call after a failed start. */
  private async release(): Promise<void> {
    this.stopping.abort();
    // Jobs still running after a failed start or a missed deadline stop claiming before their database closes.
    await Promise.all(this.jobRuntimes.splice(0).map((jobs) => jobs.stop()));
    if (this.rateLimitRedis) {
      await this.rateLimitRedis.quit().catch(() => undefined);
      this.rateLimitRedis = undefined;
    }
    await this.calls?.close();
    if (this.bus) {
      await this.bus.close().catch((error: unknown) => this.log.error({ err: error }, 'closing the bus failed'));
    }
    for (const runtime of this.runtimes.splice(0).reverse()) {
      for (const [alias, handle] of runtime.handles) {
        await handle
          .close()
          .catch((error: unknown) =>
            this.log.error({ err: error, service: runtime.name, driver: alias }, 'closing a driver failed'),
          );
      }
    }
  }

  /**
   * Stops on SIGTERM and SIGINT and exits: 0 after a clean stop, 1 when the deadline was hit. Used by `gantry start`.
   */
  stopOnSignals(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.log.info({ signal }, 'signal received');
      this.stop().then(
        (result) => exit(result.clean ? 0 : 1),
        (error: unknown) => {
          this.log.error({ err: error }, 'stop failed');
          exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  private serviceInfos(): { name: string; version: string }[] {
    return this.services.map((s) => ({ name: s.info.name, version: s.info.version }));
  }

  private uptimeSeconds(): number {
    return this.startedAt === 0 ? 0 : Math.round((Date.now() - this.startedAt) / 1000);
  }

  private pluginApi(): HostPluginApi {
    const info: HostInfo = {
      env: this.env,
      services: this.services,
      serviceInfos: () => this.serviceInfos(),
      streamCounters: () => this.counters.entries(),
      streamStats: (stream, group) => this.messageBus.stats(stream, group),
      uptimeSeconds: () => this.uptimeSeconds(),
      callStats: () => this.callStats(),
      liveInstances: () => this.liveInstances(),
      jobCounts: async () => {
        const counts = await Promise.all(
          this.jobRuntimes.map(async (jobs) =>
            (await jobs.counts()).map((count) => ({ service: jobs.serviceName, ...count })),
          ),
        );
        return counts.flat();
      },
      outboxBacklog: () =>
        Promise.all(this.relays.map(async (relay) => ({ service: relay.service, unsent: await relay.backlog() }))),
    };
    return {
      hook: (name, fn) => this.hooks.add(name, fn),
      routes: (register) => this.extraRoutes.push(register),
      check: (name, fn) => this.checks.set(name, fn),
      metrics: (provider) => {
        this.metricsFor = provider;
      },
      log: this.log,
      info,
    };
  }
}

/** Creates a host; call `start()` to run it. */
export function createHost(options: HostOptions): Host {
  return new Host(options);
}

type ConsumerContext = Parameters<ConsumerDef['handler']>[1];

function embeddedInProd(detail: string): GantryError {
  return new GantryError(
    'GANTRY_ERR_CONFIG_EMBEDDED_IN_PROD',
    `prod refuses embedded defaults: ${detail} (or set GANTRY_ALLOW_EMBEDDED=true)`,
  );
}

/**
 * The config a driver opens with. Database drivers get the host's `DATABASE_URL` unless they set their own, and apply
 * pending migrations at start in dev and test only: elsewhere migrating is a deliberate step (`gantry db migrate`).
 */
function driverConfig(
  kind: string,
  env: GantryEnv,
  databaseUrl: string | undefined,
  own: Record<string, unknown> | undefined,
): Record<string, unknown> {
  if (kind !== 'database') return own ?? {};
  return {
    onPending: env === 'dev' || env === 'test' ? 'apply' : 'fail',
    ...(databaseUrl !== undefined ? { url: databaseUrl } : {}),
    ...own,
  };
}

async function safeCheck(check: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await check();
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

/** What every run of one HTTP route shares. */
interface PreparedRoute {
  plan: AuthPlan;
  timeoutMs: number;
  statusOf: (result: unknown) => number | undefined;
}
