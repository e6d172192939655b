import { destination } from 'pino';
import { GantryError } from '../../errors/gantry-error.ts';
import { createHost } from '../../host/host.ts';
import type { JobRecord, JobState } from '../../jobs/job-store.ts';
import { JOB_STATES } from '../../jobs/job-store.ts';
import type { Jobs } from '../../jobs/jobs.ts';
import { loadHostFile } from '../load-host.ts';

/** Options every `gantry jobs` command takes. */
export interface JobsCommandOptions {
  host?: string;
  json?: boolean;
}

/**
 * Opens one service's jobs in a host of that service alone (its drivers open; no workers, consumers or schedules
 * run), calls `use`, and stops the host.
 */
async function withJobs<T>(
  serviceName: string,
  options: JobsCommandOptions,
  use: (jobs: Jobs) => Promise<T>,
): Promise<T> {
  const definition = await loadHostFile(options.host);
  // Logs go to stderr, so that stdout holds only the answer (JSON for scripts).
  const host = createHost({ ...definition, only: [serviceName], consumers: false, logDestination: destination(2) });
  await host.start();
  try {
    const jobs = host.runtime(serviceName).jobs;
    if (jobs === undefined) {
      throw new GantryError('GANTRY_ERR_JOBS_UNAVAILABLE', `service '${serviceName}' defines no task or schedule`);
    }
    return await use(jobs);
  } finally {
    await host.stop();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function line(record: JobRecord): string {
  const progress = record.state === 'running' ? ` ${Math.round(record.progress * 100)}%` : '';
  return [
    record.id,
    record.state.padEnd(9),
    record.task,
    `${record.attempts}/${record.maxAttempts}${progress}`,
    record.createdAt,
    record.lastError ? `${record.lastError.code}: ${record.lastError.message}` : '',
  ].join('  ');
}

/** `gantry jobs list <service> [--task] [--state] [--limit] [--json]`: the newest jobs first, one per line. */
export async function jobsListCommand(
  serviceName: string,
  options: JobsCommandOptions & { task?: string; state?: string; limit?: string; before?: string },
): Promise<void> {
  if (options.state !== undefined && !(JOB_STATES as readonly string[]).includes(options.state)) {
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `--state must be one of ${JOB_STATES.join(', ')}`);
  }
  const records = await withJobs(serviceName, options, (jobs) =>
    jobs.list({
      ...(options.task !== undefined ? { task: options.task } : {}),
      ...(options.state !== undefined ? { state: options.state as JobState } : {}),
      ...(options.limit !== undefined ? { limit: Number(options.limit) } : {}),
      ...(options.before !== undefined ? { before: options.before } : {}),
    }),
  );
  if (options.json) return print(records);
  process.stdout.write(records.length === 0 ? 'no jobs\n' : `${records.map(line).join('\n')}\n`);
}

/** `gantry jobs get <service> <id>`: one job's whole record as JSON. */
export async function jobsGetCommand(serviceName: string, id: string, options: JobsCommandOptions): Promise<void> {
  const record = await withJobs(serviceName, options, (jobs) => jobs.get(id));
  if (record === undefined) throw new GantryError('GANTRY_ERR_JOB_NOT_FOUND', `no job ${id} in '${serviceName}'`);
  print(record);
}

/** `gantry jobs cancel <service> <id>`: cancels an unfinished job and prints its record. */
export async function jobsCancelCommand(serviceName: string, id: string, options: JobsCommandOptions): Promise<void> {
  print(await withJobs(serviceName, options, (jobs) => jobs.cancel(id)));
}

/** `gantry jobs retry <service> <id>`: queues a dead or cancelled job again and prints its record. */
export async function jobsRetryCommand(serviceName: string, id: string, options: JobsCommandOptions): Promise<void> {
  print(await withJobs(serviceName, options, (jobs) => jobs.retry(id)));
}

/** `gantry jobs schedules <service>`: each cron schedule with its last and next tick. */
export async function jobsSchedulesCommand(serviceName: string, options: JobsCommandOptions): Promise<void> {
  const schedules = await withJobs(serviceName, options, (jobs) => jobs.schedules());
  if (options.json) return print(schedules);
  process.stdout.write(
    schedules.length === 0
      ? 'no schedules\n'
      : `${schedules.map((s) => `${s.name}  ${s.pattern}${s.timezone ? ` (${s.timezone})` : ''}  last ${s.lastTickAt ?? 'never'}  next ${s.nextRunAt ?? 'never'}`).join('\n')}\n`,
  );
}
