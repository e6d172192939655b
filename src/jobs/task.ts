import type { Static, TSchema } from 'typebox';

/**
 * How long a task waits before its next attempt after a failure. `delayMs` is the first delay; `jitter` (0–1, default
 * 0) takes up to that fraction off each delay at random, so that many jobs failing together do not retry together.
 *
 * - `fixed`: every retry waits `delayMs`;
 * - `linear`: the n-th retry waits `n × delayMs`;
 * - `exponential`: the n-th retry waits `delayMs × factor^(n-1)` (`factor` default 2).
 *
 * `linear` and `exponential` stop growing at `maxDelayMs` (default one hour).
 *
 * @example
 * { kind: 'exponential', delayMs: 1_000, maxDelayMs: 60_000, jitter: 0.2 }
 */
export type BackoffPolicy =
  | { kind: 'fixed'; delayMs: number; jitter?: number }
  | { kind: 'linear'; delayMs: number; maxDelayMs?: number; jitter?: number }
  | { kind: 'exponential'; delayMs: number; factor?: number; maxDelayMs?: number; jitter?: number };

/** Options of a task (see {@link defineTask}). */
export interface TaskOptions<I extends TSchema> {
  /** The schema of the task's input: checked (and defaults filled) at enqueue, so a job always holds valid input. */
  input: I;
  /** Attempts in all, the first included, before the job is `dead`; default 3. */
  attempts?: number;
  /** The wait between attempts; default exponential from 1 s, up to 1 h, jitter 0.2. */
  backoff?: BackoffPolicy;
  /** Milliseconds an attempt may run before its signal aborts and it counts as failed; default 10 minutes. */
  timeout?: number;
  /** Jobs of this task one instance runs at once; default 4. */
  concurrency?: number;
  /** The default priority of its jobs: higher runs first; default 0. */
  priority?: number;
  /**
   * A task enqueued (in the same transaction) when a job of this one is `dead`, with a {@link DeadJob} as its input:
   * alerting, compensation, a ticket. Its input schema must accept a `DeadJob` (`deadJobSchema` is one).
   */
  onFail?: TaskDef<TSchema>;
}

/** A named, typed task: what `svc.task(def, handler)` runs and `ctx.enqueue(def, input)` asks for. */
export interface TaskDef<I extends TSchema = TSchema> {
  readonly kind: 'task';
  readonly name: string;
  readonly options: TaskOptions<I>;
}

/** The input of an `onFail` task: the job that died and why. */
export interface DeadJob {
  jobId: string;
  task: string;
  input: unknown;
  attempts: number;
  error: { code: string; message: string };
}

/** Options of `ctx.enqueue`. */
export interface EnqueueOptions {
  /** Run no sooner than this many ms from now. */
  delay?: number;
  /** Run no sooner than this time. Wins over `delay`. */
  runAt?: Date;
  /**
   * A deduplication key: while a job of the same task with this key is unfinished (queued, running or waiting to
   * retry), enqueueing again adds nothing and returns that job.
   */
  key?: string;
  /** Higher runs first; defaults to the task's. */
  priority?: number;
  /**
   * A transaction of the service's job database (`ctx.drivers.db.db.transaction(async (tx) => ...)`): the job exists
   * if and only if that transaction commits.
   */
  tx?: { execute: (query: never) => PromiseLike<unknown> };
}

/** What `ctx.enqueue` resolves to. */
export interface EnqueuedJob {
  id: string;
  /** True when a job with the same key was unfinished, and that job's id is returned instead of a new one. */
  deduplicated: boolean;
}

/** The job a task handler runs, as its context shows it. */
export interface JobInfo {
  readonly id: string;
  readonly task: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly key?: string;
  readonly enqueuedAt: Date;
}

/** What a task handler's context adds to the service's: the job, and a way to report progress. */
export interface TaskContextExtras {
  readonly job: JobInfo;
  /**
   * Records how far the job is (0–1) and what it is doing, visible in its record at once. Resolves false when the job
   * is no longer this worker's (cancelled, or taken over after a lost heartbeat): the handler should stop.
   */
  progress(fraction: number, message?: string): Promise<boolean>;
}

/** The tick a schedule's handler runs for. */
export interface TickInfo {
  readonly schedule: string;
  /** The time the cron expression named, not the time the handler started. */
  readonly scheduledAt: Date;
}

/** What happens to ticks that passed while no instance of the service ran. */
export type MissedTicks = 'skip' | 'once' | 'all';

/** Options of `svc.cron`. */
export interface CronOptions {
  /** Names the schedule (jobs, logs, the tick key); defaults to the expression, with the time zone when one is set. */
  name?: string;
  /** An IANA time zone (`Europe/Paris`); UTC by default. */
  timezone?: string;
  /**
   * Ticks missed while the service was down: `skip` them (default), run `once` for the latest, or run `all` of them
   * (at most 100, oldest first).
   */
  missed?: MissedTicks;
  /** As for a task: attempts (default 1), backoff and timeout of each tick's job. */
  attempts?: number;
  backoff?: BackoffPolicy;
  timeout?: number;
}

const TASK_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

/**
 * Declares a task: a name and its options. Define it once, run it with `svc.task(def, handler)` and ask for it with
 * `ctx.enqueue(def, input)`: both are typed from the input schema.
 *
 * @example
 * export const sendWelcome = defineTask('emails.welcome', { input: t.Object({ customerId: t.String() }), attempts: 5 });
 * svc.task(sendWelcome, async ({ customerId }, ctx) => { ... });
 * await ctx.enqueue(sendWelcome, { customerId }, { delay: 60_000 });
 */
export function defineTask<I extends TSchema>(name: string, options: TaskOptions<I>): TaskDef<I> {
  if (!TASK_NAME.test(name)) {
    throw new TypeError(`task name '${name}' must be dotted lower-case words, like 'emails.welcome'`);
  }
  checkPositive(options.attempts, `attempts of task '${name}'`);
  checkPositive(options.concurrency, `concurrency of task '${name}'`);
  checkPositive(options.timeout, `timeout of task '${name}'`);
  return { kind: 'task', name, options };
}

/** The input type of a task. */
export type TaskInput<T> = T extends TaskDef<infer I> ? Static<I> : never;

function checkPositive(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new TypeError(`${what} must be a whole number above 0`);
  }
}

/** Options of `svc.jobs(...)`: where a service keeps its jobs and how its workers pace themselves. */
export interface JobsOptions {
  /** The database driver (by alias) holding the job tables; needed only when the service has several. */
  database?: string;
  /** Finished jobs (succeeded, dead, cancelled) are deleted this long after they finished; default 7 days. */
  keepFinishedMs?: number;
  /** How often an idle worker looks for due jobs; default 500. An enqueue in the same process wakes it at once. */
  pollMs?: number;
  /** How often a worker heartbeats its running jobs; default 5 000. */
  heartbeatMs?: number;
  /** A running job whose worker has not heartbeated for this long is run again; default 30 000. */
  heartbeatTimeoutMs?: number;
}
