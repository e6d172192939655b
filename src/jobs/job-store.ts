import type { WireError } from '../errors/gantry-error.ts';

/**
 * Where a job is in its life:
 * - `queued`: waiting for its `runAt`, then for a worker;
 * - `running`: an attempt is under way on `worker`, which heartbeats;
 * - `retrying`: the last attempt failed and another will run at `runAt` (the "failed, will retry");
 * - `succeeded`, `dead` (out of attempts), `cancelled`: finished; kept for the retention time, then deleted.
 */
export type JobState = 'queued' | 'running' | 'retrying' | 'succeeded' | 'dead' | 'cancelled';

/** Every job state, in life order. */
export const JOB_STATES = [
  'queued',
  'running',
  'retrying',
  'succeeded',
  'dead',
  'cancelled',
] as const satisfies readonly JobState[];

/** The states of a job that has not finished; a dedup key holds while its job is in one of them. */
export const UNFINISHED_STATES = ['queued', 'running', 'retrying'] as const satisfies readonly JobState[];

/** One failed attempt, as the record keeps it. */
export interface JobFailure {
  attempt: number;
  startedAt: string;
  failedAt: string;
  error: WireError;
}

/** The record of one job, as `gantry jobs get`, the HTTP endpoints and `ctx.jobs.get` show it. */
export interface JobRecord {
  id: string;
  task: string;
  state: JobState;
  input: unknown;
  key: string | null;
  priority: number;
  /** Attempts started so far. */
  attempts: number;
  maxAttempts: number;
  /** 0–1, set by the handler through `ctx.progress()`; 1 once succeeded. */
  progress: number;
  progressMessage: string | null;
  result: unknown;
  lastError: WireError | null;
  /** Every failed attempt, oldest first: the delays between them show the backoff. */
  failures: JobFailure[];
  /** The task enqueued when this job dies, if any. */
  onFail: string | null;
  worker: string | null;
  createdAt: string;
  /** When the job may run next (queued, retrying), or last could. */
  runAt: string;
  /** Start of the latest attempt. */
  startedAt: string | null;
  heartbeatAt: string | null;
  finishedAt: string | null;
}

/** A job to store. */
export interface NewJob {
  task: string;
  input: unknown;
  maxAttempts: number;
  priority: number;
  /** Milliseconds from now (the database's clock) before it may run; 0 for at once. */
  delayMs: number;
  /** An absolute earliest start; wins over `delayMs`. */
  runAt?: Date;
  key?: string;
  onFail?: string;
  requestId?: string;
  traceparent?: string;
}

/** What a worker receives for each job it claimed: enough to run it and to settle this attempt. */
export interface ClaimedJob {
  id: string;
  task: string;
  input: unknown;
  /** The attempt now starting, 1-based: every later call about this attempt names it. */
  attempt: number;
  maxAttempts: number;
  key: string | null;
  createdAt: Date;
  /** How long the job waited between becoming due (`runAt`) and this claim, in ms. */
  queuedMs: number;
  requestId: string | null;
  traceparent: string | null;
}

/** The number of jobs of one task in one state. */
export interface JobCount {
  task: string;
  state: JobState;
  count: number;
}

/** One attempt of one job: what settles and heartbeats name, so that a stale worker cannot settle a newer attempt. */
export interface AttemptRef {
  id: string;
  attempt: number;
}

/** What to do with a failed attempt. */
export type FailOutcome =
  | { kind: 'retry'; delayMs: number }
  | { kind: 'dead'; onFail?: { task: string; maxAttempts: number; priority: number } };

/** Filter of {@link JobStore.list}. */
export interface JobFilter {
  task?: string;
  state?: JobState;
  /** Most records to return, newest first; default 50, at most 1000. */
  limit?: number;
  /** Only jobs created before this one (paging: pass the last id of the previous page). */
  before?: string;
}

/** A cron schedule as the shared store records it. */
export interface ScheduleRecord {
  name: string;
  pattern: string;
  timezone: string | null;
  /** The latest tick some instance fired. */
  lastTickAt: string | null;
  /** The next tick, as the last instance to look computed it. */
  nextRunAt: string | null;
}

/** A stale attempt: running, but its worker has not heartbeated within the timeout. */
export interface StaleJob extends AttemptRef {
  task: string;
  maxAttempts: number;
  worker: string | null;
}

/** A transaction (or database) of the store's backend that an enqueue joins. */
export type StoreTransaction = { execute: (query: never) => PromiseLike<unknown> };

/**
 * The job store: the shared, durable record of every job of one service, and the only state workers share. Every
 * instance of the service talks to the same store; nothing about jobs lives in one process's memory.
 *
 * Times are the store's clock, never a worker's, so instances with skewed clocks agree on what is due and what is
 * stale.
 *
 * @remarks Left out on purpose: running handlers, retry policies and schedules' arithmetic (the runtime in
 * `runtime.ts` decides those and tells the store the outcome), wake-ups across instances (workers poll, and an
 * instance that enqueues wakes its own workers), and any notion of queues apart from task names.
 */
export interface JobStore {
  /**
   * Creates the store's tables when missing. Idempotent and safe when several instances start at once; changes no
   * data.
   */
  prepare(): Promise<void>;

  /**
   * Stores a job. With `tx` it is written in that transaction, and exists if and only if the transaction commits.
   * With a `key`, when an unfinished job of the same task has that key nothing is written and that job's id is
   * returned with `deduplicated: true`; two concurrent enqueues with one key store one job.
   */
  enqueue(job: NewJob, tx?: StoreTransaction): Promise<{ id: string; deduplicated: boolean }>;

  /**
   * Claims due jobs, at most `limit` of each task named, highest priority first, then earliest `runAt`: each becomes
   * `running` on `worker` with its attempt counter raised, and no other claim gets it while it stays so. Claims by
   * concurrent workers never return the same attempt twice, and never wait on each other's rows.
   */
  claim(worker: string, slots: readonly { task: string; limit: number }[]): Promise<ClaimedJob[]>;

  /**
   * Records that `worker` still runs these attempts. Returns the ids among them that are still its own; an attempt
   * missing from the answer was cancelled or taken over, and its handler should stop.
   */
  heartbeat(worker: string, attempts: readonly AttemptRef[]): Promise<Set<string>>;

  /** Records progress of a running attempt; false when the attempt is no longer running (the value is not kept). */
  progress(ref: AttemptRef, fraction: number, message: string | null): Promise<boolean>;

  /**
   * Marks a running attempt `succeeded` with its result. False, changing nothing, when that attempt is no longer the
   * job's running one (cancelled, or taken over after its heartbeat timed out).
   */
  complete(ref: AttemptRef, result: unknown): Promise<boolean>;

  /**
   * Settles a running attempt as failed: `retrying` after the delay, or `dead` — and then, in the same transaction,
   * enqueues the `onFail` task with a `DeadJob` input. The failure is appended to the record. False, changing
   * nothing, when the attempt is no longer the job's running one.
   */
  fail(ref: AttemptRef, error: WireError, outcome: FailOutcome): Promise<boolean>;

  /** Running attempts whose last heartbeat is older than `timeoutMs`, oldest first, at most `limit`. */
  stale(timeoutMs: number, limit: number): Promise<StaleJob[]>;

  /** One job, or undefined. */
  get(id: string): Promise<JobRecord | undefined>;

  /** How many jobs each task has in each state (finished ones while they are kept), for metrics. */
  counts(): Promise<JobCount[]>;

  /** Jobs matching the filter, newest first. */
  list(filter?: JobFilter): Promise<JobRecord[]>;

  /**
   * Cancels an unfinished job: a waiting one never runs; a running one is marked at once, its worker learns at its
   * next heartbeat (its handler's signal aborts) and its outcome is not recorded. Resolves to the record, or undefined
   * when there is no such job; a finished job is returned unchanged (check its state).
   */
  cancel(id: string): Promise<JobRecord | undefined>;

  /**
   * Queues a `dead` or `cancelled` job again at once, granting it `attempts` more attempts; its history stays.
   * Resolves to the record, or undefined when there is no such job; a job in another state is returned unchanged.
   */
  retry(id: string, attempts: number): Promise<JobRecord | undefined>;

  /** Deletes finished jobs, and schedule ticks, older than `olderThanMs`; returns how many jobs went. */
  purge(olderThanMs: number): Promise<number>;

  /**
   * Records a schedule (its expression and the next tick an instance computed), creating it when new; returns the
   * latest tick fired before, or null.
   */
  saveSchedule(schedule: {
    name: string;
    pattern: string;
    timezone: string | null;
    nextRunAt: Date | null;
  }): Promise<Date | null>;

  /**
   * Fires one tick of a schedule at most once across all instances: the first caller for `(schedule, tickAt)` stores
   * the tick and `job` together and gets the job's id; every later caller gets null and stores nothing.
   */
  fireTick(schedule: string, tickAt: Date, job: NewJob): Promise<string | null>;

  /** Every recorded schedule, by name. */
  schedules(): Promise<ScheduleRecord[]>;

  /** Resolves when the store answers; rejects with the backend's error. */
  check(): Promise<void>;
}
