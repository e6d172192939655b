import type { Static, TSchema } from 'typebox';
import type { AuthIdentity } from '../auth/identity.ts';
import type { Bus } from '../bus/bus.ts';
import type { CounterBook } from '../bus/counters.ts';
import { createEnvelope, type Envelope } from '../bus/envelope.ts';
import { type CallsApi, callsUnavailable, type HostCalls } from '../calls/calls.ts';
import type { GantryEnv } from '../config/env.ts';
import type { ServiceConfig } from '../config/load.ts';
import type { DriverHandle } from '../drivers/driver.ts';
import { GantryError } from '../errors/gantry-error.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { Logger } from '../log/logger.ts';
import { enqueueInOutbox } from '../outbox/outbox.ts';
import type { SqlRunner } from '../outbox/tables.ts';
import { validatorFor } from '../schema/validate.ts';
import type { Context, EmitOptions, ServiceContext } from '../service/context.ts';
import type { Metrics } from '../service/metrics.ts';
import type { AnyService } from '../service/service.ts';
import type { StreamDef } from '../service/stream.ts';
import { childTraceparent, type Tracking } from '../tracking/trace-context.ts';
import type { HookRegistry } from './hooks.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** How many outboxed messages' emitting spans an instance remembers until its relay publishes them. */
const MAX_OUTBOX_EMITTERS = 10_000;

/** What a service runtime takes from its host. */
interface ServiceRuntimeDeps {
  env: GantryEnv;
  log: Logger;
  bus: () => Bus;
  hooks: HookRegistry;
  stopping: AbortSignal;
  /** Asks the outbox relays to look for new rows soon. */
  nudgeOutbox: () => void;
  /** The custom metrics of this service (a plugin's, or ones that record nothing). */
  metrics: Metrics;
  /** The host's stream counters, where publishes are counted. */
  counters: CounterBook;
  /** Calls to other services (`ctx.client`, `ctx.request`, `ctx.send`); refused when absent. */
  calls?: HostCalls;
}

/** One service as a running host holds it: its resolved config, its opened drivers, and how to make contexts. */
export class ServiceRuntime {
  readonly handles = new Map<string, DriverHandle<unknown>>();
  readonly clients: Record<string, unknown> = {};
  /** The service's jobs, set by the host at start when the service has tasks or schedules. */
  jobs: Jobs | undefined;

  readonly service: AnyService;
  readonly config: ServiceConfig;
  private readonly deps: ServiceRuntimeDeps;

  constructor(service: AnyService, config: ServiceConfig, deps: ServiceRuntimeDeps) {
    this.service = service;
    this.config = config;
    this.deps = deps;
  }

  get name(): string {
    return this.service.info.name;
  }

  /** The context of lifecycle hooks. */
  serviceContext(): ServiceContext {
    return {
      service: this.service.info,
      env: this.deps.env,
      log: this.deps.log.child({ service: this.name, version: this.service.info.version }),
      settings: this.config.settings,
      drivers: this.clients,
      signal: this.deps.stopping,
    };
  }

  /**
   * The context of one event run.
   *
   * @param deadline Epoch ms the run must end by; outbound calls never wait past it.
   * @param auth The verified caller of an HTTP event.
   */
  eventContext(
    event: string,
    tracking: Tracking,
    log: Logger,
    signal: AbortSignal,
    deadline?: number,
    auth?: AuthIdentity,
  ): Context {
    const calls =
      this.deps.calls?.forEvent({ caller: this.service.info, tracking, deadline, signal }) ?? this.noCalls();
    const ctx: Mutable<Context> = {
      service: this.service.info,
      env: this.deps.env,
      event,
      log,
      tracking,
      settings: this.config.settings,
      drivers: this.clients,
      signal,
      metrics: this.deps.metrics,
      emit: (stream, data, options) => this.emit(stream, data, tracking, options),
      client: calls.client,
      request: calls.request,
      send: calls.send,
      enqueue: (task, input, options) => this.jobControl().enqueue(task, input, { ...options, tracking }),
      jobs: this.jobControl(),
    };
    // Set after the literal rather than spread into it: the keys stay absent when there is no value.
    if (deadline !== undefined) ctx.deadline = deadline;
    if (auth !== undefined) ctx.auth = auth;
    return ctx;
  }

  /** What `ctx.client`, `ctx.request` and `ctx.send` are outside a host with calls: made once, they hold no state. */
  private unavailableCalls: CallsApi | undefined;

  private noCalls(): CallsApi {
    this.unavailableCalls ??= callsUnavailable(`service '${this.name}' outside a host`);
    return this.unavailableCalls;
  }

  /** What `ctx.jobs` is in a service without jobs: made once, it holds no state. */
  private unavailableJobs: Jobs | undefined;

  private jobControl(): Jobs {
    if (this.jobs) return this.jobs;
    this.unavailableJobs ??= jobsUnavailable(this.name);
    return this.unavailableJobs;
  }

  /** Validates and publishes one message on behalf of this service. */
  async emit<S extends TSchema>(
    stream: StreamDef<S>,
    data: Static<S>,
    tracking: Tracking | undefined,
    options: EmitOptions = {},
  ): Promise<void> {
    if (!this.service.emitted.has(stream.name)) {
      throw new GantryError(
        'GANTRY_ERR_STREAM_UNDECLARED',
        `service '${this.name}' emits to '${stream.name}' without declaring it; add .emits(${stream.name}) to the service`,
      );
    }
    const validator = validatorFor(stream.schema);
    if (!validator.check(data)) {
      throw new GantryError(
        'GANTRY_ERR_STREAM_INVALID_MESSAGE',
        `message for '${stream.name}' does not match its schema`,
        {
          details: validator.problems(data),
        },
      );
    }
    const key = options.key ?? stream.key?.(data);
    // The message carries a span of its own under the emitting event's (the publish span), which its consumers
    // continue: publish and consume then sit in one trace with their parent links right.
    const publish = tracking ? childTraceparent(tracking) : undefined;
    const envelope = createEnvelope({
      stream: stream.name,
      data,
      source: `${this.name}@${this.service.info.version}`,
      ...(key !== undefined ? { key } : {}),
      ...(tracking && publish ? { tracking: { ...tracking, traceparent: publish.traceparent } } : {}),
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    });
    if (options.tx !== undefined) {
      // Stored with the caller's transaction; the outbox relay publishes it after commit (and fires onPublish then).
      await enqueueInOutbox(options.tx as unknown as SqlRunner, this.name, envelope);
      if (tracking && this.deps.hooks.has('onPublish')) this.rememberEmitter(envelope.id, tracking.spanId);
      this.deps.nudgeOutbox();
      return;
    }
    const startedAt = Date.now();
    await this.deps.bus().publish(stream.name, envelope);
    this.published(envelope, tracking ? { parentSpanId: tracking.spanId, startedAt } : undefined);
  }

  /**
   * Which event emitted each message this instance put in its outbox, and when: its relay then reports the publish
   * under that event's span, from emit to broker. Bounded, since a rolled-back transaction's messages never come back
   * for theirs; messages relayed by another instance (or after a restart) stay without a parent.
   */
  private readonly outboxEmitters = new Map<string, { parentSpanId: string; startedAt: number }>();

  private rememberEmitter(messageId: string, parentSpanId: string): void {
    if (this.outboxEmitters.size >= MAX_OUTBOX_EMITTERS) {
      const oldest = this.outboxEmitters.keys().next().value;
      if (oldest !== undefined) this.outboxEmitters.delete(oldest);
    }
    this.outboxEmitters.set(messageId, { parentSpanId, startedAt: Date.now() });
  }

  /**
   * Tells the observers that a message of this service reached the bus; `emitted` says which event's span emitted it
   * and when its publish began. For a message relayed from the outbox, it is looked up among those this instance
   * stored (from emit to broker); unknown for the others.
   */
  published(envelope: Envelope, emitted?: { parentSpanId: string; startedAt: number }): void {
    this.deps.counters.of(envelope.type).published++;
    if (emitted === undefined && this.outboxEmitters.size > 0) {
      emitted = this.outboxEmitters.get(envelope.id);
      this.outboxEmitters.delete(envelope.id);
    }
    if (this.deps.hooks.has('onPublish')) {
      this.deps.hooks.emit(
        'onPublish',
        emitted
          ? {
              service: this.service.info,
              stream: envelope.type,
              envelope,
              parentSpanId: emitted.parentSpanId,
              startedAt: emitted.startedAt,
              durationMs: Date.now() - emitted.startedAt,
            }
          : { service: this.service.info, stream: envelope.type, envelope },
      );
    }
  }
}

/** What `ctx.jobs` is in a service that keeps no jobs: every use says why. */
function jobsUnavailable(service: string): Jobs {
  const refuse = async (): Promise<never> => {
    throw new GantryError(
      'GANTRY_ERR_JOBS_UNAVAILABLE',
      `service '${service}' keeps no jobs: it defines no task or schedule (svc.task, svc.cron), or its host has not started`,
    );
  };
  return { enqueue: refuse, get: refuse, list: refuse, cancel: refuse, retry: refuse, schedules: refuse };
}
