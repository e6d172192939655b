// The example's customers service in a Gantry host on embedded PGlite, logging on, for the HTTP benchmark; beside it
// the same schemas over an in-memory store (/mem/...), to measure the framework without the database.

import { Customer, CustomerId, NewCustomer } from '../../examples/customers/model.ts';
import { customers } from '../../examples/customers/service.ts';
import { createHost, notFound, reply, service } from '../../src/index.ts';
import { MemoryCustomers } from './memory-store.ts';

const store = new MemoryCustomers();
const memory = service({ name: 'memory-customers', version: '1.0.0' })
  .post('/mem/customers', { body: NewCustomer, response: { 201: Customer } }, async ({ body }) => {
    const row = store.insert(body);
    return reply(201, row, { location: `/mem/customers/${row.id}` });
  })
  .get('/mem/customers/:id', { params: CustomerId, response: Customer }, async ({ params }) => {
    const row = store.find(params.id);
    if (!row) throw notFound(`customer ${params.id} not found`);
    return row;
  });

const host = createHost({
  services: [customers, memory],
  env: 'test',
  config: { host: { port: Number(process.env.PORT), address: '127.0.0.1', docs: false } },
});
await host.start();
host.stopOnSignals();
await host.listen();
process.send?.('ready');
