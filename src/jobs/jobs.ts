import type { Static, TSchema } from 'typebox';
import type { Tracking } from '../tracking/trace-context.ts';
import type { JobFilter, JobRecord, ScheduleRecord } from './job-store.ts';
import type { EnqueuedJob, EnqueueOptions, TaskDef } from './task.ts';

/** A schedule as operators see it: the shared record plus the next tick computed now. */
export interface ScheduleView extends ScheduleRecord {
  /** The next tick from now, computed from the expression by this instance. */
  nextRunAt: string | null;
}

/**
 * The jobs of one service: `ctx.jobs` in handlers, `host.runtime(name).jobs` in tools, what `gantry jobs` and the
 * job routes use.
 */
export interface Jobs {
  /**
   * Stores a job of one of this service's tasks; any instance of the service may run it. The input is checked against
   * the task's schema (defaults filled) and a bad one is refused with `GANTRY_ERR_TASK_INVALID_INPUT`.
   */
  enqueue<I extends TSchema>(
    task: TaskDef<I>,
    input: Static<I>,
    options?: EnqueueOptions & { tracking?: Tracking },
  ): Promise<EnqueuedJob>;
  /** One job's record, or undefined. */
  get(id: string): Promise<JobRecord | undefined>;
  /** Records, newest first. */
  list(filter?: JobFilter): Promise<JobRecord[]>;
  /**
   * Cancels an unfinished job (a running one's handler sees its signal abort at its worker's next heartbeat).
   * `GANTRY_ERR_JOB_NOT_FOUND` when there is none, `GANTRY_ERR_JOB_STATE` when it has finished.
   */
  cancel(id: string): Promise<JobRecord>;
  /**
   * Runs a `dead` or `cancelled` job again, with its task's attempts afresh. `GANTRY_ERR_JOB_NOT_FOUND` when there is
   * none, `GANTRY_ERR_JOB_STATE` when it is in another state (or its key is held by a newer unfinished job).
   */
  retry(id: string): Promise<JobRecord>;
  /** The service's schedules, with their last and next ticks. */
  schedules(): Promise<ScheduleView[]>;
}
