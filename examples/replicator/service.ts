import { notFound, service, t } from 'gantry';
import { traceWork } from 'gantry/observe';
import { Customer } from '../customers/model.ts';
import { customerChanged } from '../customers/streams.ts';
import { replicaDriver } from './driver.ts';
import { rowOfChange } from './store.ts';
import { rebuildReplica, verifyReplica } from './sync.ts';

const ReplicaStatus = t.Object({
  store: t.String(),
  rows: t.Integer({ description: 'customers not deleted' }),
  deleted: t.Integer({ description: 'tombstones of deleted customers' }),
  lastApplied: t.Union([
    t.Object({ customerId: t.String(), version: t.Integer(), at: t.String({ format: 'date-time' }) }),
    t.Null(),
  ]),
  lag: t.Union([t.Integer({ description: 'changes not yet applied' }), t.Null()]),
});

/**
 * The replicator: keeps a read replica of the customers in a second database, applying each change only when it is
 * newer than what the replica has, so duplicates and out-of-order deliveries converge to the source.
 */
export const replicator = service({
  name: 'replicator',
  version: '1.0.0',
  description: 'A read replica of the customers, fed by customers.changed.',
  settings: t.Object({
    sourceUrl: t.String({
      default: 'http://127.0.0.1:8080',
      description: 'base URL of the customers service, for rebuild and verify',
    }),
  }),
  drivers: { replica: replicaDriver() },
  groups: ['workers'],
})
  .on(customerChanged, { group: 'replicator', concurrency: 16, maxAttempts: 10 }, async (change, ctx) => {
    const store = ctx.drivers.replica;
    // A span of its own under the consume span, so a trace shows the replica write and how long it took.
    const applied = await traceWork(ctx.tracking, 'replica upsert', () => store.upsert(rowOfChange(change)), {
      attributes: {
        'db.system.name': store.kind === 'mysql' ? 'mysql' : 'postgresql',
        'db.operation.name': 'upsert',
      },
    });
    if (!applied) ctx.log.debug({ customerId: change.customerId, version: change.version }, 'stale change skipped');
  })
  .get(
    '/replica/customers/:id',
    {
      params: t.Object({ id: t.String({ format: 'uuid' }) }),
      response: Customer,
      summary: 'A customer, from the replica',
    },
    async ({ params }, ctx) => {
      const row = await ctx.drivers.replica.get(params.id);
      if (!row || row.deletedAt !== null) throw notFound(`customer ${params.id} is not in the replica`);
      const { deletedAt: _deleted, appliedAt: _applied, ...customer } = row;
      return customer;
    },
  )
  .get(
    '/replica/status',
    { response: ReplicaStatus, summary: 'Rows, the last change applied, and lag' },
    async (_input, ctx) => {
      const status = await ctx.drivers.replica.status();
      return { store: ctx.drivers.replica.kind, ...status, lag: null };
    },
  )
  .command('rebuild', { description: "replace the replica with the source's snapshot" }, async (_input, ctx) =>
    rebuildReplica(ctx.drivers.replica, ctx.settings.sourceUrl, ctx.signal),
  )
  .command(
    'verify',
    { description: 'compare the replica with the source, row by row, and count the differences' },
    async (_input, ctx) => verifyReplica(ctx.drivers.replica, ctx.settings.sourceUrl, ctx.signal),
  );
