import { type SQL, sql } from 'drizzle-orm';
import type { WireError } from '../../errors/gantry-error.ts';
import type { SqlRunner } from '../../outbox/tables.ts';
import type {
  AttemptRef,
  ClaimedJob,
  FailOutcome,
  JobCount,
  JobFilter,
  JobRecord,
  JobState,
  JobStore,
  NewJob,
  ScheduleRecord,
  StaleJob,
  StoreTransaction,
} from '../job-store.ts';
import { type ClaimedRow, claimedJob, type JobRow, jobRecord, type ScheduleRow, scheduleRecord } from './codec.ts';
import { jobTablesSql } from './schema.ts';

/** Options of {@link PostgresJobStore}. */
export interface PostgresJobStoreOptions {
  /** The service's drizzle database (node-postgres or PGlite): the store runs raw SQL on it. */
  db: SqlRunner;
  /** The PostgreSQL schema of the tables: the service's Gantry schema (`gantry_<service>`). */
  schema: string;
}

const UNFINISHED = sql.raw(`('queued', 'running', 'retrying')`);

/**
 * The {@link JobStore} on PostgreSQL: plain SQL through the service's drizzle database, so it runs unchanged on a
 * PostgreSQL server and on embedded PGlite, and an enqueue can join the caller's transaction.
 *
 * Claims take due rows with `FOR UPDATE SKIP LOCKED` in one statement for all tasks, so workers in any number of
 * processes share the work without waiting on each other. Every settle names the attempt it settles
 * (`attempts = $n and state = 'running'`), which is what keeps a worker that lost its lease from overwriting the
 * attempt that replaced it.
 *
 * @example
 * const store = new PostgresJobStore({ db: ctx.drivers.db.db, schema: 'gantry_orders' });
 * await store.prepare();
 */
export class PostgresJobStore implements JobStore {
  private readonly db: SqlRunner;
  private readonly s: ReturnType<typeof sql.identifier>;

  private readonly schemaName: string;

  constructor(options: PostgresJobStoreOptions) {
    this.db = options.db;
    this.s = sql.identifier(options.schema);
    this.schemaName = options.schema;
  }

  async prepare(): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const statement of jobTablesSql(this.schemaName)) await tx.execute(statement);
    });
  }

  async enqueue(job: NewJob, tx?: StoreTransaction): Promise<{ id: string; deduplicated: boolean }> {
    const runner = (tx as SqlRunner | undefined) ?? this.db;
    const runAt =
      job.runAt !== undefined
        ? sql`${job.runAt.toISOString()}::timestamptz`
        : job.delayMs > 0
          ? sql`now() + make_interval(secs => ${job.delayMs / 1000}::double precision)`
          : sql`now()`;
    const { rows } = await runner.execute<{ id: string }>(
      sql`insert into ${this.s}.jobs (task, input, key, priority, max_attempts, run_at, on_fail, request_id, traceparent)
          values (${job.task}, ${JSON.stringify(job.input ?? null)}::jsonb, ${job.key ?? null}, ${job.priority},
                  ${job.maxAttempts}, ${runAt}, ${job.onFail ?? null}, ${job.requestId ?? null}, ${job.traceparent ?? null})
          on conflict (task, key) where key is not null and state in ${UNFINISHED} do nothing
          returning id`,
    );
    const created = rows[0];
    if (created) return { id: created.id, deduplicated: false };
    // The key is taken: the unfinished job holding it is the answer. Read in the same transaction, which the
    // conflicting insert waited on, so the row is visible.
    const { rows: existing } = await runner.execute<{ id: string }>(
      sql`select id from ${this.s}.jobs where task = ${job.task} and key = ${job.key ?? null} and state in ${UNFINISHED} limit 1`,
    );
    const found = existing[0];
    if (found) return { id: found.id, deduplicated: true };
    // The holder finished between the two statements: the key is free again.
    return this.enqueue(job, tx);
  }

  async claim(worker: string, slots: readonly { task: string; limit: number }[]): Promise<ClaimedJob[]> {
    const wanted = slots.filter((slot) => slot.limit > 0);
    if (wanted.length === 0) return [];
    const values = sql.join(
      wanted.map((slot) => sql`(${slot.task}::text, ${slot.limit}::integer)`),
      sql`, `,
    );
    const { rows } = await this.db.execute<ClaimedRow>(
      sql`with picked as (
            select j.id from (values ${values}) as w(task, free)
            cross join lateral (
              select id from ${this.s}.jobs
              where task = w.task and state in ('queued', 'retrying') and run_at <= now()
              order by priority desc, run_at, id
              limit w.free
              for update skip locked
            ) j
          )
          update ${this.s}.jobs as job
          set state = 'running', attempts = job.attempts + 1, started_at = now(), heartbeat_at = now(),
              worker = ${worker}, progress = 0, progress_message = null
          from picked where job.id = picked.id
          returning job.id, job.task, job.input, job.attempts, job.max_attempts, job.key, job.created_at,
                    job.request_id, job.traceparent,
                    extract(epoch from (now() - job.run_at)) * 1000 as queued_ms`,
    );
    return rows.map(claimedJob);
  }

  async heartbeat(worker: string, attempts: readonly AttemptRef[]): Promise<Set<string>> {
    if (attempts.length === 0) return new Set();
    const refs = sql.join(
      attempts.map((ref) => sql`(${ref.id}::uuid, ${ref.attempt}::integer)`),
      sql`, `,
    );
    const { rows } = await this.db.execute<{ id: string }>(
      sql`update ${this.s}.jobs as job set heartbeat_at = now()
          from (values ${refs}) as r(id, attempt)
          where job.id = r.id and job.attempts = r.attempt and job.state = 'running' and job.worker = ${worker}
          returning job.id`,
    );
    return new Set(rows.map((row) => row.id));
  }

  async progress(ref: AttemptRef, fraction: number, message: string | null): Promise<boolean> {
    const { rows } = await this.db.execute<{ id: string }>(
      sql`update ${this.s}.jobs set progress = ${fraction}, progress_message = ${message}, heartbeat_at = now()
          where id = ${ref.id} and attempts = ${ref.attempt} and state = 'running' returning id`,
    );
    return rows.length > 0;
  }

  async complete(ref: AttemptRef, result: unknown): Promise<boolean> {
    const { rows } = await this.db.execute<{ id: string }>(
      sql`update ${this.s}.jobs
          set state = 'succeeded', result = ${JSON.stringify(result ?? null)}::jsonb, finished_at = now(), progress = 1
          where id = ${ref.id} and attempts = ${ref.attempt} and state = 'running' returning id`,
    );
    return rows.length > 0;
  }

  async fail(ref: AttemptRef, error: WireError, outcome: FailOutcome): Promise<boolean> {
    const errorJson = JSON.stringify(error);
    const failure = sql`failures || jsonb_build_array(jsonb_build_object(
        'attempt', attempts, 'startedAt', started_at, 'failedAt', now(), 'error', ${errorJson}::jsonb))`;
    const running = sql`id = ${ref.id} and attempts = ${ref.attempt} and state = 'running'`;
    if (outcome.kind === 'retry') {
      const { rows } = await this.db.execute<{ id: string }>(
        sql`update ${this.s}.jobs
            set state = 'retrying', last_error = ${errorJson}::jsonb, failures = ${failure},
                run_at = now() + make_interval(secs => ${outcome.delayMs / 1000}::double precision)
            where ${running} returning id`,
      );
      return rows.length > 0;
    }
    const onFail = outcome.onFail;
    // One statement: the job dies and its on-fail job is born together, or neither happens.
    const { rows } = await this.db.execute<{ dead: number }>(
      sql`with dead as (
            update ${this.s}.jobs
            set state = 'dead', last_error = ${errorJson}::jsonb, failures = ${failure}, finished_at = now()
            where ${running}
            returning id, task, input, attempts, request_id, traceparent
          ), spawned as (
            insert into ${this.s}.jobs (task, input, priority, max_attempts, request_id, traceparent)
            select ${onFail?.task ?? null}::text,
                   jsonb_build_object('jobId', id, 'task', task, 'input', input, 'attempts', attempts,
                                      'error', jsonb_build_object('code', ${error.code}::text, 'message', ${error.message}::text)),
                   ${onFail?.priority ?? 0}::integer, ${onFail?.maxAttempts ?? 1}::integer, request_id, traceparent
            from dead where ${onFail?.task ?? null}::text is not null
            returning id
          )
          select (select count(*) from dead)::integer as dead`,
    );
    return (rows[0]?.dead ?? 0) > 0;
  }

  async stale(timeoutMs: number, limit: number): Promise<StaleJob[]> {
    const { rows } = await this.db.execute<{
      id: string;
      attempts: number;
      task: string;
      max_attempts: number;
      worker: string | null;
    }>(
      sql`select id, attempts, task, max_attempts, worker from ${this.s}.jobs
          where state = 'running' and heartbeat_at < now() - make_interval(secs => ${timeoutMs / 1000}::double precision)
          order by heartbeat_at limit ${limit}`,
    );
    return rows.map((row) => ({
      id: row.id,
      attempt: row.attempts,
      task: row.task,
      maxAttempts: row.max_attempts,
      worker: row.worker,
    }));
  }

  async get(id: string): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.db.execute<JobRow>(sql`select * from ${this.s}.jobs where id = ${id}`);
    const row = rows[0];
    return row ? jobRecord(row) : undefined;
  }

  async counts(): Promise<JobCount[]> {
    const { rows } = await this.db.execute<{ task: string; state: JobState; count: number }>(
      sql`select task, state, count(*)::int as count from ${this.s}.jobs group by task, state order by task, state`,
    );
    return rows.map((row) => ({ task: row.task, state: row.state, count: Number(row.count) }));
  }

  async list(filter: JobFilter = {}): Promise<JobRecord[]> {
    const limit = Math.min(1000, Math.max(1, filter.limit ?? 50));
    const where: SQL[] = [sql`true`];
    if (filter.task !== undefined) where.push(sql`task = ${filter.task}`);
    if (filter.state !== undefined) where.push(sql`state = ${filter.state}`);
    if (filter.before !== undefined && isUuid(filter.before)) {
      where.push(sql`seq < (select seq from ${this.s}.jobs where id = ${filter.before}::uuid)`);
    }
    const { rows } = await this.db.execute<JobRow>(
      sql`select * from ${this.s}.jobs where ${sql.join(where, sql` and `)}
          order by seq desc limit ${limit}`,
    );
    return rows.map(jobRecord);
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    await this.db.execute(
      sql`update ${this.s}.jobs set state = 'cancelled', finished_at = now()
          where id = ${id} and state in ${UNFINISHED}`,
    );
    return this.get(id);
  }

  async retry(id: string, attempts: number): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    // The key may have been taken by a newer job since this one finished; then the retry waits for that one to end
    // rather than break the one-unfinished-job-per-key rule: the update simply matches nothing.
    await this.db.execute(
      sql`update ${this.s}.jobs as job
          set state = 'queued', run_at = now(), finished_at = null, worker = null, heartbeat_at = null,
              max_attempts = job.attempts + ${attempts}::integer
          where job.id = ${id} and job.state in ('dead', 'cancelled')
            and (job.key is null or not exists (
              select 1 from ${this.s}.jobs other
              where other.task = job.task and other.key = job.key and other.state in ${UNFINISHED}))`,
    );
    return this.get(id);
  }

  async purge(olderThanMs: number): Promise<number> {
    const cutoff = sql`now() - make_interval(secs => ${olderThanMs / 1000}::double precision)`;
    const { rows } = await this.db.execute<{ id: string }>(
      sql`delete from ${this.s}.jobs where finished_at < ${cutoff} returning id`,
    );
    await this.db.execute(sql`delete from ${this.s}.job_ticks where fired_at < ${cutoff}`);
    return rows.length;
  }

  async saveSchedule(schedule: {
    name: string;
    pattern: string;
    timezone: string | null;
    nextRunAt: Date | null;
  }): Promise<Date | null> {
    const { rows } = await this.db.execute<{ last_tick_at: Date | string | null }>(
      sql`insert into ${this.s}.job_schedules (name, pattern, timezone, next_run_at)
          values (${schedule.name}, ${schedule.pattern}, ${schedule.timezone},
                  ${schedule.nextRunAt?.toISOString() ?? null}::timestamptz)
          on conflict (name) do update
          set pattern = excluded.pattern, timezone = excluded.timezone, next_run_at = excluded.next_run_at,
              updated_at = now()
          returning last_tick_at`,
    );
    const last = rows[0]?.last_tick_at ?? null;
    return last === null ? null : new Date(last);
  }

  async fireTick(schedule: string, tickAt: Date, job: NewJob): Promise<string | null> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ schedule: string }>(
        sql`insert into ${this.s}.job_ticks (schedule, tick_at) values (${schedule}, ${tickAt.toISOString()}::timestamptz)
            on conflict do nothing returning schedule`,
      );
      if (rows.length === 0) return null;
      const { id } = await this.enqueue(job, tx);
      await tx.execute(
        sql`update ${this.s}.job_ticks set job_id = ${id}::uuid
            where schedule = ${schedule} and tick_at = ${tickAt.toISOString()}::timestamptz`,
      );
      await tx.execute(
        sql`update ${this.s}.job_schedules
            set last_tick_at = greatest(coalesce(last_tick_at, ${tickAt.toISOString()}::timestamptz), ${tickAt.toISOString()}::timestamptz)
            where name = ${schedule}`,
      );
      return id;
    });
  }

  async schedules(): Promise<ScheduleRecord[]> {
    const { rows } = await this.db.execute<ScheduleRow>(
      sql`select name, pattern, timezone, last_tick_at, next_run_at from ${this.s}.job_schedules order by name`,
    );
    return rows.map(scheduleRecord);
  }

  async check(): Promise<void> {
    await this.db.execute(sql`select 1 from ${this.s}.jobs limit 1`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are uuids; anything else names no job, and is answered so without asking the database (which would reject it). */
function isUuid(id: string): boolean {
  return UUID.test(id);
}
