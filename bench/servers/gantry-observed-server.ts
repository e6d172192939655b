// The Gantry benchmark server (the example's customers service and its in-memory twin) with the metrics and tracing
// plugins on, spans exported in batches to an exporter that drops them (the cost of export minus the network).
// OBSERVE=off runs the same process without the plugins, so both sides of the ratio start the same way; OBSERVE=metrics
// or OBSERVE=tracing runs one of the two (bare-metrics: metrics without process metrics).

import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Customer, CustomerId, NewCustomer } from '../../examples/customers/model.ts';
import { customers } from '../../examples/customers/service.ts';
import { createHost, type HostPlugin, notFound, reply, service } from '../../src/index.ts';
import { metricsPlugin, tracingPlugin } from '../../src/observe/index.ts';
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

const dropSpans: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => undefined,
};
const observe = process.env.OBSERVE ?? 'on';
const plugins: HostPlugin[] = [];
if (observe === 'on' || observe === 'metrics') plugins.push(metricsPlugin());
if (observe === 'bare-metrics') plugins.push(metricsPlugin({ defaultMetrics: false }));
if (observe === 'on' || observe === 'tracing') plugins.push(tracingPlugin({ exporter: dropSpans, environment: {} }));

const host = createHost({
  services: [customers, memory],
  env: 'test',
  plugins,
  config: { host: { port: Number(process.env.PORT), address: '127.0.0.1', docs: false } },
});
await host.start();
host.stopOnSignals();
await host.listen();
process.send?.('ready');
