import type { EventAuth } from '../auth/rules.ts';
import { GantryError } from '../errors/gantry-error.ts';
import { t } from '../schema/index.ts';
import type { Context } from '../service/context.ts';
import type { ServicePlugin } from '../service/service.ts';
import { jobRecordSchema, jobStateSchema, scheduleSchema } from './schemas.ts';

/** What a caller of the job routes asks to do, as `authorize` sees it. */
export type JobAction =
  | { kind: 'list' }
  | { kind: 'schedules' }
  | { kind: 'get'; jobId: string }
  | { kind: 'cancel'; jobId: string }
  | { kind: 'retry'; jobId: string };

/** Options of {@link jobRoutes}. */
export interface JobRoutesOptions {
  /** Where the routes live; default `/jobs`. Give each service its own when several in one host use them. */
  prefix?: string;
  /** Who may call them (see docs/security.md); the host's default when omitted. */
  auth?: EventAuth;
  /** A last word on each call, after `auth`: false answers 403. */
  authorize?: (ctx: Context, action: JobAction) => boolean | Promise<boolean>;
}

const IdParams = t.Object({ id: t.String() });

/**
 * Adds HTTP routes over the service's jobs, opt in: `GET /jobs` (filter by `task` and `state`, page with `before`),
 * `GET /jobs/schedules` (with each next run), `GET /jobs/:id`, `POST /jobs/:id/cancel`, `POST /jobs/:id/retry`.
 *
 * @example
 * svc.use(jobRoutes({ auth: { roles: ['support'] }, authorize: (ctx, action) => action.kind !== 'retry' || isOnCall(ctx) }));
 */
export function jobRoutes(options: JobRoutesOptions = {}): ServicePlugin {
  const prefix = (options.prefix ?? '/jobs').replace(/\/$/, '');
  const common = { tags: ['jobs'], ...(options.auth !== undefined ? { auth: options.auth } : {}) };
  const allow = async (ctx: Context, action: JobAction): Promise<void> => {
    if (options.authorize && !(await options.authorize(ctx, action))) {
      throw new GantryError('GANTRY_ERR_AUTH_FORBIDDEN', `not allowed to ${action.kind} jobs`);
    }
  };
  return (svc) => {
    svc
      .get(
        prefix,
        {
          ...common,
          summary: 'List jobs, newest first',
          query: t.Object({
            task: t.Optional(t.String()),
            state: t.Optional(jobStateSchema),
            limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000 })),
            before: t.Optional(t.String()),
          }),
          response: t.Array(jobRecordSchema),
        },
        async ({ query }, ctx) => {
          await allow(ctx, { kind: 'list' });
          return ctx.jobs.list({
            ...(query.task !== undefined ? { task: query.task } : {}),
            ...(query.state !== undefined ? { state: query.state } : {}),
            ...(query.limit !== undefined ? { limit: query.limit } : {}),
            ...(query.before !== undefined ? { before: query.before } : {}),
          });
        },
      )
      .get(
        `${prefix}/schedules`,
        { ...common, summary: 'The cron schedules, with their last and next ticks', response: t.Array(scheduleSchema) },
        async (_input, ctx) => {
          await allow(ctx, { kind: 'schedules' });
          return ctx.jobs.schedules();
        },
      )
      .get(
        `${prefix}/:id`,
        { ...common, summary: 'One job', params: IdParams, response: jobRecordSchema },
        async ({ params }, ctx) => {
          await allow(ctx, { kind: 'get', jobId: params.id });
          const record = await ctx.jobs.get(params.id);
          if (record === undefined) throw new GantryError('GANTRY_ERR_JOB_NOT_FOUND', `no job ${params.id}`);
          return record;
        },
      )
      .post(
        `${prefix}/:id/cancel`,
        { ...common, summary: 'Cancel an unfinished job', params: IdParams, response: jobRecordSchema },
        async ({ params }, ctx) => {
          await allow(ctx, { kind: 'cancel', jobId: params.id });
          return ctx.jobs.cancel(params.id);
        },
      )
      .post(
        `${prefix}/:id/retry`,
        { ...common, summary: 'Run a dead or cancelled job again', params: IdParams, response: jobRecordSchema },
        async ({ params }, ctx) => {
          await allow(ctx, { kind: 'retry', jobId: params.id });
          return ctx.jobs.retry(params.id);
        },
      );
  };
}
