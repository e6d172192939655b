/**
 * Gantry jobs: tasks run in the background by any instance of a service, their records, and cron schedules.
 * @packageDocumentation
 */
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';
export {
  type AttemptRef,
  type ClaimedJob,
  type FailOutcome,
  JOB_STATES,
  type JobFailure,
  type JobFilter,
  type JobRecord,
  type JobState,
  type JobStore,
  type NewJob,
  type ScheduleRecord,
  type StaleJob,
  type StoreTransaction,
  UNFINISHED_STATES,
} from './job-store.ts';
export type { Jobs, ScheduleView } from './jobs.ts';
export { jobTablesSql, PostgresJobStore, type PostgresJobStoreOptions } from './postgres/index.ts';
export { type JobAction, type JobRoutesOptions, jobRoutes } from './routes.ts';
export { JOBS_DEFAULTS, ServiceJobs } from './runtime.ts';
export { CronSchedule, MAX_CATCH_UP } from './schedule.ts';
export { deadJobSchema, jobRecordSchema, jobStateSchema, scheduleSchema } from './schemas.ts';
export {
  type BackoffPolicy,
  type CronOptions,
  type DeadJob,
  defineTask,
  type EnqueuedJob,
  type EnqueueOptions,
  type JobInfo,
  type JobsOptions,
  type MissedTicks,
  type TaskContextExtras,
  type TaskDef,
  type TaskInput,
  type TaskOptions,
  type TickInfo,
} from './task.ts';
