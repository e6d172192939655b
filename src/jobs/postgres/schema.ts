import { type SQL, sql } from 'drizzle-orm';

/**
 * The statements that create the job tables in `schema` (the service's own Gantry schema), each `IF NOT EXISTS`, to
 * run in one transaction after an advisory lock: two sessions racing on `CREATE TABLE IF NOT EXISTS` can both try to
 * create the table, and one then fails on the catalogue.
 *
 * - `jobs`: one row per job, from enqueue until the retention time after it finished. `attempts` counts attempts
 *   started; `run_at` is when a waiting job may run; `heartbeat_at` is the running worker's last sign of life.
 *   `failures` keeps each failed attempt, so the record shows the backoff actually applied.
 * - `job_ticks`: one row per fired tick of a schedule; its primary key is what makes a tick fire once.
 * - `job_schedules`: one row per schedule: expression, last fired tick, next tick.
 *
 * Later versions add columns with `ADD COLUMN IF NOT EXISTS` here, so this stays the only migration.
 */
export function jobTablesSql(schema: string): SQL[] {
  const s = sql.identifier(schema);
  return [
    sql`select pg_advisory_xact_lock(hashtext(${`gantry-jobs:${schema}`}))`,
    sql`create schema if not exists ${s}`,
    sql`create table if not exists ${s}.jobs (
      id uuid primary key default gen_random_uuid(),
      task text not null,
      state text not null default 'queued'
        check (state in ('queued', 'running', 'retrying', 'succeeded', 'dead', 'cancelled')),
      input jsonb not null,
      key text,
      priority integer not null default 0,
      attempts integer not null default 0,
      max_attempts integer not null,
      run_at timestamptz not null default now(),
      created_at timestamptz not null default now(),
      started_at timestamptz,
      heartbeat_at timestamptz,
      finished_at timestamptz,
      worker text,
      progress real not null default 0,
      progress_message text,
      result jsonb,
      last_error jsonb,
      failures jsonb not null default '[]'::jsonb,
      on_fail text,
      request_id text,
      traceparent text
    ) with (fillfactor = 80)`,
    // The dedup key holds while the job is unfinished: a key taken by a running job stays taken until it ends, so a
    // job never moves between states that would make two unfinished jobs share a key.
    sql`create unique index if not exists jobs_key on ${s}.jobs (task, key)
      where key is not null and state in ('queued', 'running', 'retrying')`,
    sql`create index if not exists jobs_due on ${s}.jobs (task, priority desc, run_at, id)
      where state in ('queued', 'retrying')`,
    sql`create index if not exists jobs_running on ${s}.jobs (heartbeat_at) where state = 'running'`,
    sql`create index if not exists jobs_finished on ${s}.jobs (finished_at) where finished_at is not null`,
    sql`create index if not exists jobs_created on ${s}.jobs (created_at desc, id desc)`,
    sql`create table if not exists ${s}.job_ticks (
      schedule text not null,
      tick_at timestamptz not null,
      job_id uuid,
      fired_at timestamptz not null default now(),
      primary key (schedule, tick_at)
    )`,
    sql`create table if not exists ${s}.job_schedules (
      name text primary key,
      pattern text not null,
      timezone text,
      last_tick_at timestamptz,
      next_run_at timestamptz,
      updated_at timestamptz not null default now()
    )`,
  ];
}
