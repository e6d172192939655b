import { randomUUID } from 'node:crypto';
import { type ContextOf, notFound, reply, service } from 'gantry';
import { database } from 'gantry/db';
import {
  Customer,
  CustomerId,
  CustomerPage,
  CustomerPatch,
  CustomerQuery,
  CustomerSnapshot,
  CustomersSettings,
  NewCustomer,
  SnapshotQuery,
} from './model.ts';
import {
  type CustomersDb,
  deleteCustomer,
  findCustomer,
  insertCustomer,
  listCustomers,
  snapshotCustomers,
  toCustomer,
  updateCustomer,
} from './repository.ts';
import { type CustomerRow, customers as customersTable } from './schema.ts';
import { type CustomerChange, customerChanged, type NotificationRequest, notificationRequested } from './streams.ts';

const base = service({
  name: 'customers',
  version: '1.1.0',
  description: 'Customer records. Every change is emitted to customers.changed, with the record before and after.',
  settings: CustomersSettings,
  drivers: {
    db: database({ schema: { customers: customersTable }, migrations: new URL('./migrations', import.meta.url) }),
  },
  groups: ['api'],
}).emits(customerChanged, notificationRequested);

type Ctx = ContextOf<typeof base>;

/**
 * Emits the change and the notification it calls for, in the transaction of the write: through the outbox, so the
 * row and its messages are committed together or not at all.
 */
async function announce(
  ctx: Ctx,
  tx: CustomersDb,
  operation: CustomerChange['operation'],
  before: CustomerRow | null,
  after: CustomerRow | null,
): Promise<void> {
  const current = (after ?? before) as CustomerRow;
  const change: CustomerChange = {
    operation,
    customerId: current.id,
    version: current.version,
    before: before && toCustomer(before),
    after: operation === 'deleted' || !after ? null : toCustomer(after),
    changedBy: ctx.tracking.caller ?? 'api',
    changedAt: current.updatedAt.toISOString(),
  };
  await ctx.emit(customerChanged, change, { tx });
  const notification = notificationFor(operation, before, after);
  if (notification) await ctx.emit(notificationRequested, notification, { tx });
}

function notificationFor(
  operation: CustomerChange['operation'],
  before: CustomerRow | null,
  after: CustomerRow | null,
): NotificationRequest | null {
  const common = { notificationId: randomUUID() };
  if (operation === 'created' && after)
    return { ...common, kind: 'welcome', customerId: after.id, name: after.name, to: [after.email] };
  if (operation === 'deleted' && before)
    return { ...common, kind: 'goodbye', customerId: before.id, name: before.name, to: [before.email] };
  if (operation === 'updated' && before && after && before.email !== after.email) {
    // Tell both addresses, so a change the customer did not make does not go unnoticed.
    return {
      ...common,
      kind: 'email-changed',
      customerId: after.id,
      name: after.name,
      to: [after.email],
      cc: [before.email],
      previousEmail: before.email,
    };
  }
  return null;
}

async function change(ctx: Ctx, id: string, patch: CustomerPatch): Promise<Customer> {
  const after = await ctx.drivers.db.db.transaction(async (tx) => {
    const before = await findCustomer(tx, id, { lock: true });
    if (!before) throw notFound(`customer ${id} not found`);
    const updated = (await updateCustomer(tx, id, patch)) as CustomerRow;
    await announce(ctx, tx, 'updated', before, updated);
    return updated;
  });
  return toCustomer(after);
}

/** The customers service: the CRUD API of the example system, emitting every change. */
export const customers = base
  .post(
    '/customers',
    { body: NewCustomer, response: { 201: Customer, 409: null }, summary: 'Create a customer' },
    async ({ body }, ctx) => {
      const row = await ctx.drivers.db.db.transaction(async (tx) => {
        const created = await insertCustomer(tx, body);
        await announce(ctx, tx, 'created', null, created);
        return created;
      });
      ctx.log.info({ customerId: row.id }, 'customer created');
      return reply(201, toCustomer(row), { location: `/customers/${row.id}` });
    },
  )
  .get(
    '/customers/:id',
    { params: CustomerId, response: Customer, summary: 'Get a customer' },
    async ({ params }, ctx) => {
      const row = await findCustomer(ctx.drivers.db.db, params.id);
      if (!row) throw notFound(`customer ${params.id} not found`);
      return toCustomer(row);
    },
  )
  .get(
    '/customers',
    { query: CustomerQuery, response: CustomerPage, summary: 'List customers' },
    async ({ query }, ctx) => {
      const page = query.page ?? 1;
      const pageSize = query.pageSize ?? ctx.settings.pageSize;
      const { rows, total } = await listCustomers(ctx.drivers.db.db, { ...query, page, pageSize });
      return { items: rows.map(toCustomer), total, page, pageSize };
    },
  )
  .put(
    '/customers/:id',
    { params: CustomerId, body: NewCustomer, response: { 200: Customer, 409: null }, summary: 'Replace a customer' },
    async ({ params, body }, ctx) => change(ctx, params.id, body),
  )
  .patch(
    '/customers/:id',
    {
      params: CustomerId,
      body: CustomerPatch,
      response: { 200: Customer, 409: null },
      summary: 'Change some fields of a customer',
    },
    async ({ params, body }, ctx) => change(ctx, params.id, body),
  )
  .delete(
    '/customers/:id',
    { params: CustomerId, response: { 204: null }, summary: 'Delete a customer' },
    async ({ params }, ctx) => {
      await ctx.drivers.db.db.transaction(async (tx) => {
        const before = await findCustomer(tx, params.id, { lock: true });
        if (!before) throw notFound(`customer ${params.id} not found`);
        const deleted = (await deleteCustomer(tx, params.id)) as CustomerRow;
        await announce(ctx, tx, 'deleted', before, deleted);
      });
      return undefined;
    },
  )
  .get(
    '/customers-snapshot',
    {
      query: SnapshotQuery,
      response: CustomerSnapshot,
      summary: 'Every customer, deleted ones included, for replicas',
      tags: ['replication'],
    },
    async ({ query }, ctx) => {
      const limit = query.limit ?? 500;
      const rows = await snapshotCustomers(ctx.drivers.db.db, query.after, limit);
      return {
        items: rows.map((row) => ({ ...toCustomer(row), deletedAt: row.deletedAt?.toISOString() ?? null })),
        next: rows.length === limit ? (rows.at(-1)?.id ?? null) : null,
      };
    },
  );
