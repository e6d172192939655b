// The baseline: a bare Fastify server with the same schemas, the same data access and the same database as the
// Gantry example, with Fastify's own request logging on. Its POST /customers does the same writes as the example's:
// in one transaction, the customer row and two outbox rows (the customers.changed message and the welcome
// notification), through the same repository and outbox functions. What it does not do is Gantry's part: validating
// the messages against their stream schemas, and relaying the outbox rows to a bus after commit.

import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import Fastify from 'fastify';
import { Customer, CustomerId, NewCustomer } from '../../examples/customers/model.ts';
import { findCustomer, insertCustomer, toCustomer } from '../../examples/customers/repository.ts';
import { customers } from '../../examples/customers/schema.ts';
import { customerChanged, notificationRequested } from '../../examples/customers/streams.ts';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { readMigrations } from '../../src/db/migrations.ts';
import { enqueueInOutbox } from '../../src/outbox/outbox.ts';
import { ensureMessagingTables, type SqlRunner } from '../../src/outbox/tables.ts';
import { MemoryCustomers } from './memory-store.ts';

const NotFound = { type: 'object', properties: { title: { type: 'string' } } } as const;
const client = new PGlite();
for (const migration of await readMigrations(new URL('../../examples/customers/migrations', import.meta.url))) {
  for (const statement of migration.sql) await client.exec(statement);
}
const db = drizzle(client, { schema: { customers } });
await ensureMessagingTables(db as unknown as SqlRunner, 'customers');
const source = 'customers@bench';
const app = Fastify({ logger: { level: 'info' } });
app.post('/customers', { schema: { body: NewCustomer, response: { 201: Customer } } }, async (request, reply) => {
  const row = await db.transaction(async (tx) => {
    const created = await insertCustomer(tx, request.body as { name: string; email: string });
    const after = toCustomer(created);
    const change = {
      operation: 'created',
      customerId: created.id,
      version: created.version,
      before: null,
      after,
      changedBy: 'api',
      changedAt: after.updatedAt,
    };
    const welcome = {
      notificationId: randomUUID(),
      kind: 'welcome',
      customerId: created.id,
      name: created.name,
      to: [created.email],
    };
    const outbox = tx as unknown as SqlRunner;
    await enqueueInOutbox(outbox, 'customers', createEnvelope({ stream: customerChanged.name, data: change, source }));
    await enqueueInOutbox(
      outbox,
      'customers',
      createEnvelope({ stream: notificationRequested.name, data: welcome, source }),
    );
    return created;
  });
  return reply.code(201).header('location', `/customers/${row.id}`).send(toCustomer(row));
});
app.get(
  '/customers/:id',
  { schema: { params: CustomerId, response: { 200: Customer, 404: NotFound } } },
  async (request, reply) => {
    const row = await findCustomer(db, (request.params as { id: string }).id);
    if (!row) return reply.code(404).send({ title: 'not found' });
    return toCustomer(row);
  },
);
const store = new MemoryCustomers();
app.post('/mem/customers', { schema: { body: NewCustomer, response: { 201: Customer } } }, async (request, reply) => {
  const row = store.insert(request.body as { name: string; email: string });
  return reply.code(201).header('location', `/mem/customers/${row.id}`).send(row);
});
app.get(
  '/mem/customers/:id',
  { schema: { params: CustomerId, response: { 200: Customer, 404: NotFound } } },
  async (request, reply) => {
    const row = store.find((request.params as { id: string }).id);
    if (!row) return reply.code(404).send({ title: 'not found' });
    return row;
  },
);
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
process.send?.('ready');
