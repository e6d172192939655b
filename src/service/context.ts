import type { Static, TSchema } from 'typebox';
import type { AuthIdentity } from '../auth/identity.ts';
import type { CallsApi } from '../calls/calls.ts';
import type { GantryEnv } from '../config/env.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { EnqueuedJob, EnqueueOptions, TaskDef } from '../jobs/task.ts';
import type { Logger } from '../log/logger.ts';
import type { Tracking } from '../tracking/trace-context.ts';
import type { Metrics } from './metrics.ts';
import type { StreamDef } from './stream.ts';

/** What `emit` needs of a transaction: a drizzle PostgreSQL transaction (or database) of the service. */
export interface OutboxTransaction {
  execute: (query: never) => PromiseLike<unknown>;
}

/** Name and version of the service an event belongs to. */
export interface ServiceInfo {
  readonly name: string;
  readonly version: string;
}

/** Options of `ctx.emit`. */
export interface EmitOptions {
  /** Partition key; defaults to the stream's `key` function, then none. */
  key?: string;
  /**
   * A publish-side idempotency key. The message id is derived from it, so a second emit with the same key is the
   * same message to every inbox; through the outbox, the second one is not even stored.
   */
  idempotencyKey?: string;
  /**
   * A transaction of one of the service's databases (`ctx.drivers.db.db.transaction(async (tx) => ...)`): the message
   * is written to that database's outbox inside it and relayed to the bus after commit, so the write and the
   * message cannot diverge.
   */
  tx?: OutboxTransaction;
}

/** What lifecycle hooks (`setup`, `shutdown`) receive. */
export interface ServiceContext<Settings = unknown, Drivers = unknown> {
  readonly service: ServiceInfo;
  readonly env: GantryEnv;
  readonly log: Logger;
  readonly settings: Settings;
  readonly drivers: Drivers;
  /** Fires when the host begins to stop. */
  readonly signal: AbortSignal;
}

/**
 * What every handler and step receives: the service's settings and drivers, a logger bound to the event and its
 * tracking ids, the tracking ids themselves, `emit`, and a signal that fires on timeout and on shutdown.
 */
export interface Context<Settings = unknown, Drivers = unknown> extends ServiceContext<Settings, Drivers>, CallsApi {
  /** The event being run (`GET /customers/:id`, `on customers.changed`, `loop sync`). */
  readonly event: string;
  readonly tracking: Tracking;
  /** The verified caller of an HTTP event (see docs/security.md); undefined for public events and other kinds. */
  readonly auth?: AuthIdentity;
  /** Custom metrics (counters, gauges, histograms); recorded when the host has a metrics plugin. */
  readonly metrics: Metrics;
  /**
   * Epoch ms this event must be done by (its timeout, shortened by a caller's `x-gantry-deadline`): calls made from
   * it never wait past it. Undefined for loops.
   */
  readonly deadline?: number;
  /** Publishes `data` to `stream`, validated against the stream's schema, carrying this context's tracking ids. */
  emit<S extends TSchema>(stream: StreamDef<S>, data: Static<S>, options?: EmitOptions): Promise<void>;
  /**
   * Enqueues a job of one of this service's tasks, carrying this context's tracking ids; any instance runs it. With
   * `tx` (a transaction of the service's job database) the job exists if and only if that transaction commits.
   */
  enqueue<I extends TSchema>(task: TaskDef<I>, input: Static<I>, options?: EnqueueOptions): Promise<EnqueuedJob>;
  /** This service's jobs and schedules: look up, list, cancel, retry. */
  readonly jobs: Jobs;
}
