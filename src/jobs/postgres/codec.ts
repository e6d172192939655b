import type { WireError } from '../../errors/gantry-error.ts';
import type { ClaimedJob, JobFailure, JobRecord, JobState, ScheduleRecord } from '../job-store.ts';

/** A `jobs` row (a type, not an interface, so that it fits drizzle's row constraint) as node-postgres and PGlite return it: timestamps as `Date` (or text), jsonb parsed (or text). */
export type JobRow = {
  id: string;
  task: string;
  state: JobState;
  input: unknown;
  key: string | null;
  priority: number;
  attempts: number;
  max_attempts: number;
  run_at: Date | string;
  created_at: Date | string;
  started_at: Date | string | null;
  heartbeat_at: Date | string | null;
  finished_at: Date | string | null;
  worker: string | null;
  progress: number | string;
  progress_message: string | null;
  result: unknown;
  last_error: unknown;
  failures: unknown;
  on_fail: string | null;
  request_id: string | null;
  traceparent: string | null;
};

/** The columns of a claimed job. */
export type ClaimedRow = Pick<
  JobRow,
  'id' | 'task' | 'input' | 'attempts' | 'max_attempts' | 'key' | 'created_at' | 'request_id' | 'traceparent'
> & { queued_ms: number | string };

/** A `job_schedules` row. */
export type ScheduleRow = {
  name: string;
  pattern: string;
  timezone: string | null;
  last_tick_at: Date | string | null;
  next_run_at: Date | string | null;
};

/** The record of a row. */
export function jobRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    task: row.task,
    state: row.state,
    input: json(row.input),
    key: row.key,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    progress: Number(row.progress),
    progressMessage: row.progress_message,
    result: json(row.result) ?? null,
    lastError: (json(row.last_error) as WireError | null) ?? null,
    failures: (json(row.failures) as JobFailure[] | null) ?? [],
    onFail: row.on_fail,
    worker: row.worker,
    createdAt: iso(row.created_at),
    runAt: iso(row.run_at),
    startedAt: isoOrNull(row.started_at),
    heartbeatAt: isoOrNull(row.heartbeat_at),
    finishedAt: isoOrNull(row.finished_at),
  };
}

/** What a worker needs of a claimed row. */
export function claimedJob(row: ClaimedRow): ClaimedJob {
  return {
    id: row.id,
    task: row.task,
    input: json(row.input),
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    key: row.key,
    createdAt: new Date(row.created_at),
    queuedMs: Math.max(0, Number(row.queued_ms)),
    requestId: row.request_id,
    traceparent: row.traceparent,
  };
}

/** The record of a schedule row. */
export function scheduleRecord(row: ScheduleRow): ScheduleRecord {
  return {
    name: row.name,
    pattern: row.pattern,
    timezone: row.timezone,
    lastTickAt: isoOrNull(row.last_tick_at),
    nextRunAt: isoOrNull(row.next_run_at),
  };
}

/** A timestamp as ISO text, whether the driver gave a `Date` or PostgreSQL's text form. */
export function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

function isoOrNull(value: Date | string | null): string | null {
  return value === null ? null : iso(value);
}

/** jsonb as both drivers return it: already parsed (a string is a JSON string, not text to parse). */
function json(value: unknown): unknown {
  return value;
}
