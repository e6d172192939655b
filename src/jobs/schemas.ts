import { t } from '../schema/index.ts';

/**
 * The input of an `onFail` task, as a schema: give it to `defineTask(name, { input: deadJobSchema })` so that the
 * task accepts what a dead job hands on.
 */
export const deadJobSchema = t.Object({
  jobId: t.String(),
  task: t.String(),
  input: t.Unknown(),
  attempts: t.Integer(),
  error: t.Object({ code: t.String(), message: t.String() }),
});

const WireErrorSchema = t.Object({
  code: t.String(),
  message: t.String(),
  retryable: t.Boolean(),
  details: t.Optional(t.Unknown()),
  origin: t.Optional(t.String()),
});

/** A job state, as a schema (a query filter, a record's field). */
export const jobStateSchema = t.Union([
  t.Literal('queued'),
  t.Literal('running'),
  t.Literal('retrying'),
  t.Literal('succeeded'),
  t.Literal('dead'),
  t.Literal('cancelled'),
]);

const Timestamp = t.String({ format: 'date-time' });

/** A job record on the wire (the job routes' answers). */
export const jobRecordSchema = t.Object({
  id: t.String(),
  task: t.String(),
  state: jobStateSchema,
  input: t.Unknown(),
  key: t.Union([t.String(), t.Null()]),
  priority: t.Integer(),
  attempts: t.Integer(),
  maxAttempts: t.Integer(),
  progress: t.Number(),
  progressMessage: t.Union([t.String(), t.Null()]),
  result: t.Unknown(),
  lastError: t.Union([WireErrorSchema, t.Null()]),
  failures: t.Array(
    t.Object({ attempt: t.Integer(), startedAt: t.String(), failedAt: t.String(), error: WireErrorSchema }),
  ),
  onFail: t.Union([t.String(), t.Null()]),
  worker: t.Union([t.String(), t.Null()]),
  createdAt: Timestamp,
  runAt: Timestamp,
  startedAt: t.Union([Timestamp, t.Null()]),
  heartbeatAt: t.Union([Timestamp, t.Null()]),
  finishedAt: t.Union([Timestamp, t.Null()]),
});

/** A schedule on the wire. */
export const scheduleSchema = t.Object({
  name: t.String(),
  pattern: t.String(),
  timezone: t.Union([t.String(), t.Null()]),
  lastTickAt: t.Union([Timestamp, t.Null()]),
  nextRunAt: t.Union([Timestamp, t.Null()]),
});
