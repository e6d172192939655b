import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { CheckResult } from '../bus/bus.ts';
import { GantryError, toGantryError, type WireError } from '../errors/gantry-error.ts';
import type { RunDeadlines } from '../host/deadlines.ts';
import type { HookRegistry } from '../host/hooks.ts';
import { runEvent } from '../host/run-event.ts';
import type { Logger } from '../log/logger.ts';
import { gantrySchema, type SqlRunner } from '../outbox/tables.ts';
import { validatorFor } from '../schema/validate.ts';
import type { Context, ServiceInfo } from '../service/context.ts';
import type { AnyService, CronEventDef, TaskEventDef } from '../service/service.ts';
import { continueTracking, type Tracking } from '../tracking/trace-context.ts';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';
import {
  type AttemptRef,
  type ClaimedJob,
  type FailOutcome,
  type JobCount,
  type JobFilter,
  type JobRecord,
  type JobStore,
  type NewJob,
  UNFINISHED_STATES,
} from './job-store.ts';
import type { Jobs, ScheduleView } from './jobs.ts';
import { PostgresJobStore } from './postgres/store.ts';
import { CronSchedule } from './schedule.ts';
import type { EnqueuedJob, EnqueueOptions, JobInfo, JobsOptions, TaskContextExtras, TaskDef } from './task.ts';

/** Defaults of {@link JobsOptions}. */
export const JOBS_DEFAULTS = {
  keepFinishedMs: 7 * 86_400_000,
  pollMs: 500,
  heartbeatMs: 5_000,
  heartbeatTimeoutMs: 30_000,
} as const satisfies Required<Omit<JobsOptions, 'database'>>;

const DEFAULT_ATTEMPTS = 3;
const DEFAULT_CONCURRENCY = 4;
const DEFAULT_TIMEOUT_MS = 600_000;
const PURGE_EVERY_MS = 600_000;
/** Node's timers hold at most 2^31-1 ms; a tick further away is re-armed on the way. */
const MAX_TIMER_MS = 2_147_483_647;

/** What the host gives the jobs of one service. */
export interface ServiceJobsOptions {
  service: AnyService;
  store: JobStore;
  /** Names this process in `worker` columns: `<hostname>-<pid>`. */
  instanceId: string;
  log: Logger;
  hooks: HookRegistry;
  /** The host's in-flight runs, aborted at the shutdown deadline. */
  inFlight: RunDeadlines;
  /** Builds a handler's context (the service runtime's `eventContext`). */
  context: (event: string, tracking: Tracking, log: Logger, signal: AbortSignal) => Context;
}

/** One task this instance can run, with its options resolved. */
interface RunnableTask {
  def: TaskDef;
  event: string;
  handler: TaskEventDef['handler'];
  attempts: number;
  concurrency: number;
  timeoutMs: number;
  busy: number;
}

/** A job running here: what heartbeats name and what cancellation aborts. */
interface RunningJob {
  ref: AttemptRef;
  cancel: AbortController;
}

/**
 * Opens the jobs of one hosted service when it has tasks or schedules: a {@link PostgresJobStore} in its database
 * (in the service's Gantry schema), tables created. Returns undefined for a service without either.
 */
export async function openServiceJobs(
  service: AnyService,
  clients: Readonly<Record<string, unknown>>,
  options: Omit<ServiceJobsOptions, 'service' | 'store'>,
): Promise<ServiceJobs | undefined> {
  if (service.tasks.length === 0 && service.schedules.length === 0) return undefined;
  const alias =
    service.jobOptions.database ??
    Object.entries(service.drivers).find(([, driver]) => driver.kind === 'database')?.[0];
  const client = alias === undefined ? undefined : (clients[alias] as { db?: SqlRunner } | undefined);
  if (client?.db === undefined) {
    throw new GantryError(
      'GANTRY_ERR_SERVICE_DEFINITION',
      `service '${service.info.name}' has tasks or schedules but no open database driver to keep its jobs in`,
    );
  }
  const store = new PostgresJobStore({ db: client.db, schema: gantrySchema(service.info.name) });
  await store.prepare();
  return new ServiceJobs({ ...options, service, store });
}

/**
 * The jobs of one service in one host: `ctx.enqueue` and `ctx.jobs`, and — once started — the worker that claims and
 * runs due jobs, heartbeats them, takes back jobs of dead workers, fires schedules and deletes old records.
 *
 * At least once: a job is settled only after its handler returned, so a crash between the two runs it again. A
 * claim is a lease kept alive by heartbeats: when they stop (the process died, or hung) any instance marks the
 * attempt failed with `GANTRY_ERR_JOB_HEARTBEAT_LOST` and the job runs again at once (or is dead when that was its
 * last attempt).
 */
export class ServiceJobs implements Jobs {
  readonly store: JobStore;
  private readonly options: ServiceJobsOptions;
  private readonly settings: Required<Omit<JobsOptions, 'database'>>;
  private readonly tasks = new Map<string, RunnableTask>();
  private readonly crons: { def: CronEventDef; cron: CronSchedule; timer?: NodeJS.Timeout }[] = [];
  private readonly running = new Map<string, RunningJob>();
  private readonly runs = new Set<Promise<void>>();
  private stopped = false;
  private started = false;
  /** The last claim found fewer due jobs than it asked for: finishing a job is no reason to look again at once. */
  private dry = true;
  private wake: (() => void) | undefined;
  private pump: Promise<void> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastStaleCheck = 0;
  private lastPurge = 0;
  private lastError: { at: number; message: string } | undefined;
  private lastClaimAt = 0;

  constructor(options: ServiceJobsOptions) {
    this.options = options;
    this.store = options.store;
    const own = options.service.jobOptions;
    this.settings = {
      keepFinishedMs: own.keepFinishedMs ?? JOBS_DEFAULTS.keepFinishedMs,
      pollMs: own.pollMs ?? JOBS_DEFAULTS.pollMs,
      heartbeatMs: own.heartbeatMs ?? JOBS_DEFAULTS.heartbeatMs,
      heartbeatTimeoutMs: own.heartbeatTimeoutMs ?? JOBS_DEFAULTS.heartbeatTimeoutMs,
    };
    for (const task of options.service.tasks) this.addTask(task.task, task.name, task.handler);
    for (const def of options.service.schedules) {
      this.addTask(def.task, `cron ${def.schedule}`, def.handler);
      this.crons.push({ def, cron: new CronSchedule(def.pattern, def.options.timezone) });
    }
  }

  private get service(): ServiceInfo {
    return this.options.service.info;
  }

  private addTask(def: TaskDef, event: string, handler: TaskEventDef['handler']): void {
    this.tasks.set(def.name, {
      def,
      event,
      handler,
      attempts: def.options.attempts ?? DEFAULT_ATTEMPTS,
      concurrency: def.options.concurrency ?? DEFAULT_CONCURRENCY,
      timeoutMs: def.options.timeout ?? DEFAULT_TIMEOUT_MS,
      busy: 0,
    });
  }

  // ---- Jobs: what handlers and tools use -------------------------------------------------------------------------

  async enqueue<I extends TSchema>(
    task: TaskDef<I>,
    input: Static<I>,
    options: EnqueueOptions & { tracking?: Tracking } = {},
  ): Promise<EnqueuedJob> {
    const known = this.tasks.get(task.name);
    if (known === undefined || task.name.startsWith('cron:')) {
      throw new GantryError(
        'GANTRY_ERR_TASK_UNDECLARED',
        `service '${this.service.name}' does not run task '${task.name}'; add .task(${task.name}, handler) to it`,
      );
    }
    const job = this.newJob(known, this.checkedInput(task, input), options);
    const enqueued = await this.store.enqueue(job, options.tx);
    // A job in the caller's transaction is not visible before it commits: look shortly after, as the outbox does.
    if (!enqueued.deduplicated && this.started) setTimeout(() => this.nudge(), options.tx ? 5 : 0).unref();
    return enqueued;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return this.store.get(id);
  }

  async list(filter?: JobFilter): Promise<JobRecord[]> {
    return this.store.list(filter);
  }

  /** How many jobs of this service's tasks are in each state. */
  async counts(): Promise<JobCount[]> {
    return this.store.counts();
  }

  /** The service whose tasks these are. */
  get serviceName(): string {
    return this.service.name;
  }

  async cancel(id: string): Promise<JobRecord> {
    const before = await this.store.get(id);
    if (before === undefined) throw notFound(id);
    const record = (UNFINISHED_STATES as readonly string[]).includes(before.state)
      ? await this.store.cancel(id)
      : before;
    if (record === undefined) throw notFound(id);
    if (record.state !== 'cancelled' || before.state === 'cancelled') {
      throw new GantryError(
        'GANTRY_ERR_JOB_STATE',
        `job ${id} is ${record.state}; only unfinished jobs can be cancelled`,
      );
    }
    // A job running here stops at once rather than at the next heartbeat.
    this.running.get(id)?.cancel.abort(cancelled(id));
    return record;
  }

  async retry(id: string): Promise<JobRecord> {
    const before = await this.store.get(id);
    if (before === undefined) throw notFound(id);
    const attempts = this.tasks.get(before.task)?.attempts ?? before.maxAttempts;
    const revivable = before.state === 'dead' || before.state === 'cancelled';
    const record = revivable ? await this.store.retry(id, attempts) : before;
    if (record === undefined) throw notFound(id);
    if (!revivable || record.state !== 'queued') {
      throw new GantryError(
        'GANTRY_ERR_JOB_STATE',
        revivable
          ? `job ${id} has key '${before.key}', held by a newer unfinished job; retry it once that one ends`
          : `job ${id} is ${record.state}; only dead or cancelled jobs can be retried`,
      );
    }
    if (this.started) this.nudge();
    return record;
  }

  async schedules(): Promise<ScheduleView[]> {
    const stored = new Map((await this.store.schedules()).map((s) => [s.name, s]));
    const now = new Date();
    return this.crons.map(({ def, cron }) => {
      const record = stored.get(def.schedule);
      return {
        name: def.schedule,
        pattern: def.pattern,
        timezone: def.options.timezone ?? null,
        lastTickAt: record?.lastTickAt ?? null,
        nextRunAt: cron.next(now)?.toISOString() ?? null,
      };
    });
  }

  // ---- The worker -------------------------------------------------------------------------------------------------

  /** Starts claiming jobs, heartbeating, recovering stale jobs and firing schedules. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.dry = false;
    this.pump = this.claimLoop();
    this.heartbeatTimer = setInterval(() => void this.maintain(), this.settings.heartbeatMs);
    this.heartbeatTimer.unref();
    for (const entry of this.crons) await this.startSchedule(entry);
  }

  /**
   * Stops claiming and firing, then waits for the jobs running here to end (their handlers see the host's shutdown
   * signal only at its deadline) and settles them. Heartbeats go on until then, so no other instance takes them.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.crons) clearTimeout(entry.timer);
    this.wake?.();
    await this.pump;
    await Promise.all([...this.runs]);
    clearInterval(this.heartbeatTimer);
  }

  /** The readiness check: the store answers, and the worker's last claim did not fail. */
  async check(): Promise<CheckResult> {
    await this.store.check();
    if (this.lastError && this.lastError.at > this.lastClaimAt) {
      return { ok: false, detail: `claiming jobs failed: ${this.lastError.message}` };
    }
    return { ok: true, detail: `${this.running.size} running here` };
  }

  /** Looks for due jobs now (after an enqueue or a retry in this process). */
  nudge(): void {
    this.dry = false;
    this.wake?.();
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const slots = [...this.tasks.values()]
        .map((task) => ({ task: task.def.name, limit: task.concurrency - task.busy }))
        .filter((slot) => slot.limit > 0);
      const asked = slots.reduce((sum, slot) => sum + slot.limit, 0);
      let delay = this.settings.pollMs;
      if (asked > 0) {
        try {
          const claimed = await this.store.claim(this.options.instanceId, slots);
          this.lastClaimAt = Date.now();
          failures = 0;
          for (const job of claimed) this.begin(job);
          this.dry = claimed.length < asked;
          // Every slot was filled: there may be more, so look again as soon as a slot frees (see `finish`).
          if (!this.dry) delay = this.settings.pollMs * 4;
          else if (claimed.length > 0) continue;
        } catch (error) {
          failures++;
          this.lastError = { at: Date.now(), message: error instanceof Error ? error.message : String(error) };
          this.options.log.warn({ err: error, service: this.service.name }, 'claiming jobs failed; will retry');
          delay = Math.min(5_000, this.settings.pollMs * 2 ** failures);
        }
      }
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private begin(job: ClaimedJob): void {
    const task = this.tasks.get(job.task);
    if (task === undefined) return;
    task.busy++;
    const run = this.run(task, job).finally(() => {
      task.busy--;
      this.runs.delete(run);
      if (!this.dry) this.wake?.();
    });
    this.runs.add(run);
  }

  private async run(task: RunnableTask, job: ClaimedJob): Promise<void> {
    const ref: AttemptRef = { id: job.id, attempt: job.attempt };
    const cancel = new AbortController();
    this.running.set(job.id, { ref, cancel });
    const tracking = continueTracking({
      ...(job.requestId !== null ? { requestId: job.requestId } : {}),
      ...(job.traceparent !== null ? { traceparent: job.traceparent } : {}),
    });
    const info: JobInfo = {
      id: job.id,
      task: job.task,
      attempt: job.attempt,
      maxAttempts: job.maxAttempts,
      enqueuedAt: job.createdAt,
      ...(job.key !== null ? { key: job.key } : {}),
    };
    const extras: TaskContextExtras = {
      job: info,
      progress: (fraction, message) =>
        this.store.progress(ref, Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0)), message ?? null),
    };
    try {
      const value = await runEvent(
        {
          service: this.service,
          event: task.event,
          kind: 'task',
          tracking,
          timeoutMs: task.timeoutMs,
          inFlight: this.options.inFlight,
          log: this.options.log,
          hooks: this.options.hooks,
          context: (log, signal) => ({
            ...this.options.context(task.event, tracking, log, AbortSignal.any([signal, cancel.signal])),
            ...extras,
          }),
          fields: { jobId: job.id, attempt: job.attempt },
          job: { task: job.task, queuedMs: job.queuedMs },
        },
        (ctx) => task.handler(job.input, ctx as Context & TaskContextExtras),
      );
      if (!(await this.store.complete(ref, value ?? null))) this.lost(job, 'its result was not recorded');
    } catch (error) {
      if (cancel.signal.aborted) return this.lost(job, 'it stopped');
      await this.failAttempt(ref, task, job.maxAttempts, toGantryError(error).toWire(this.service.name));
    } finally {
      this.running.delete(job.id);
    }
  }

  /** The job was cancelled or taken over while it ran: whatever this attempt did is not recorded. */
  private lost(job: ClaimedJob, what: string): void {
    this.options.log.warn(
      { service: this.service.name, jobId: job.id, attempt: job.attempt },
      `job was cancelled or taken over while running; ${what}`,
    );
  }

  private async failAttempt(
    ref: AttemptRef,
    task: RunnableTask | undefined,
    maxAttempts: number,
    error: WireError,
  ): Promise<void> {
    const onFail = task?.def.options.onFail;
    const onFailTask = onFail === undefined ? undefined : this.tasks.get(onFail.name);
    const outcome: FailOutcome =
      ref.attempt >= maxAttempts
        ? {
            kind: 'dead',
            ...(onFail !== undefined
              ? {
                  onFail: {
                    task: onFail.name,
                    maxAttempts: onFailTask?.attempts ?? onFail.options.attempts ?? DEFAULT_ATTEMPTS,
                    priority: onFail.options.priority ?? 0,
                  },
                }
              : {}),
          }
        : { kind: 'retry', delayMs: backoffDelay(task?.def.options.backoff ?? DEFAULT_BACKOFF, ref.attempt) };
    try {
      await this.store.fail(ref, error, outcome);
      // Look again when the retry is due rather than at the next poll after it (another instance may take it first).
      if (outcome.kind === 'retry') setTimeout(() => this.nudge(), outcome.delayMs + 1).unref();
      if (outcome.kind === 'dead') {
        this.options.log.warn({ service: this.service.name, jobId: ref.id, attempts: ref.attempt }, 'job is dead');
        if (outcome.onFail) this.nudge();
      }
    } catch (settleError) {
      // The store is away: the attempt stays `running` without heartbeats, and is taken back after the timeout.
      this.options.log.error({ err: settleError, jobId: ref.id }, 'could not record a failed attempt');
    }
  }

  /** Heartbeats the jobs running here; now and then takes back stale jobs and deletes old records. */
  private async maintain(): Promise<void> {
    try {
      const running = [...this.running.values()];
      if (running.length > 0) {
        const mine = await this.store.heartbeat(
          this.options.instanceId,
          running.map((job) => job.ref),
        );
        for (const job of running) {
          // Still running here but no longer ours in the store: cancelled, or taken over after a stall.
          if (!mine.has(job.ref.id) && this.running.get(job.ref.id) === job) job.cancel.abort(cancelled(job.ref.id));
        }
      }
      if (this.stopped) return;
      const now = Date.now();
      if (now - this.lastStaleCheck >= this.settings.heartbeatTimeoutMs / 2) {
        this.lastStaleCheck = now;
        await this.recoverStale();
      }
      if (now - this.lastPurge >= PURGE_EVERY_MS) {
        this.lastPurge = now;
        const purged = await this.store.purge(this.settings.keepFinishedMs);
        if (purged > 0) this.options.log.info({ service: this.service.name, purged }, 'deleted finished jobs');
      }
    } catch (error) {
      this.options.log.warn({ err: error, service: this.service.name }, 'job maintenance failed; will retry');
    }
  }

  private async recoverStale(): Promise<void> {
    const stale = await this.store.stale(this.settings.heartbeatTimeoutMs, 100);
    for (const job of stale) {
      const task = this.tasks.get(job.task);
      const error = new GantryError(
        'GANTRY_ERR_JOB_HEARTBEAT_LOST',
        `worker ${job.worker ?? 'unknown'} stopped heartbeating attempt ${job.attempt} for over ${this.settings.heartbeatTimeoutMs} ms`,
      ).toWire(this.service.name);
      // Run again at once: the heartbeat timeout was the wait.
      const outcome: FailOutcome = job.attempt >= job.maxAttempts ? { kind: 'dead' } : { kind: 'retry', delayMs: 0 };
      if (outcome.kind === 'dead') {
        await this.failAttempt(job, task, job.maxAttempts, error);
      } else if (await this.store.fail(job, error, outcome)) {
        this.options.log.warn(
          { service: this.service.name, jobId: job.id, worker: job.worker },
          'took back a stale job',
        );
        this.nudge();
      }
    }
  }

  // ---- Schedules --------------------------------------------------------------------------------------------------

  private async startSchedule(entry: (typeof this.crons)[number]): Promise<void> {
    const { def, cron } = entry;
    const now = new Date();
    try {
      const last = await this.store.saveSchedule({
        name: def.schedule,
        pattern: def.pattern,
        timezone: def.options.timezone ?? null,
        nextRunAt: cron.next(now),
      });
      if (last !== null) {
        for (const tick of cron.missed(last, now, def.options.missed ?? 'skip')) await this.fire(entry, tick);
      }
    } catch (error) {
      this.options.log.error({ err: error, schedule: def.schedule }, 'could not record a schedule; its ticks go on');
    }
    this.arm(entry, cron.next(now));
  }

  private arm(entry: (typeof this.crons)[number], tick: Date | null): void {
    if (this.stopped || tick === null) return;
    const wait = tick.getTime() - Date.now();
    entry.timer = setTimeout(
      () => {
        if (wait > MAX_TIMER_MS) return this.arm(entry, tick);
        void this.fire(entry, tick).finally(() =>
          // From the later of the tick and now: a tick that fired late does not fire the ones it overslept.
          this.arm(entry, entry.cron.next(new Date(Math.max(tick.getTime(), Date.now())))),
        );
      },
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    entry.timer.unref();
  }

  private async fire(entry: (typeof this.crons)[number], tick: Date): Promise<void> {
    const { def, cron } = entry;
    const task = this.tasks.get(def.task.name) as RunnableTask;
    try {
      const id = await this.store.fireTick(
        def.schedule,
        tick,
        this.newJob(task, { scheduledAt: tick.toISOString() }, {}),
      );
      if (id === null) return;
      this.options.log.info({ service: this.service.name, schedule: def.schedule, tick, jobId: id }, 'schedule fired');
      await this.store.saveSchedule({
        name: def.schedule,
        pattern: def.pattern,
        timezone: def.options.timezone ?? null,
        nextRunAt: cron.next(new Date(Math.max(tick.getTime(), Date.now()))),
      });
      this.nudge();
    } catch (error) {
      this.options.log.error({ err: error, schedule: def.schedule, tick }, 'could not fire a schedule tick');
    }
  }

  // ---- Helpers ----------------------------------------------------------------------------------------------------

  private checkedInput(task: TaskDef, input: unknown): unknown {
    const schema = task.options.input;
    const withDefaults = Value.Default(schema, structuredClone(input ?? null));
    const validator = validatorFor(schema);
    if (!validator.check(withDefaults)) {
      throw new GantryError('GANTRY_ERR_TASK_INVALID_INPUT', `the input of task '${task.name}' is invalid`, {
        details: validator.problems(withDefaults),
      });
    }
    return withDefaults;
  }

  private newJob(task: RunnableTask, input: unknown, options: EnqueueOptions & { tracking?: Tracking }): NewJob {
    return {
      task: task.def.name,
      input,
      maxAttempts: task.attempts,
      priority: options.priority ?? task.def.options.priority ?? 0,
      delayMs: Math.max(0, options.delay ?? 0),
      ...(options.runAt !== undefined ? { runAt: options.runAt } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(task.def.options.onFail !== undefined ? { onFail: task.def.options.onFail.name } : {}),
      ...(options.tracking !== undefined
        ? { requestId: options.tracking.requestId, traceparent: options.tracking.traceparent }
        : {}),
    };
  }
}

function notFound(id: string): GantryError {
  return new GantryError('GANTRY_ERR_JOB_NOT_FOUND', `no job ${id}`);
}

function cancelled(id: string): GantryError {
  return new GantryError('GANTRY_ERR_JOB_CANCELLED', `job ${id} was cancelled or taken over`);
}
