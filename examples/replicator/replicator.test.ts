import { randomUUID } from 'node:crypto';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Customer } from '../customers/model.ts';
import { customers } from '../customers/service.ts';
import { type CustomerChange, customerChanged } from '../customers/streams.ts';
import { replicator } from './service.ts';

function changes(id: string): CustomerChange[] {
  const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  const record = (version: number, name: string): Customer => ({
    id,
    name,
    email: `${name.toLowerCase()}@example.com`,
    version,
    createdAt: at(0),
    updatedAt: at(version),
  });
  return [
    {
      operation: 'created',
      customerId: id,
      version: 1,
      before: null,
      after: record(1, 'One'),
      changedBy: 'test',
      changedAt: at(1),
    },
    {
      operation: 'updated',
      customerId: id,
      version: 2,
      before: record(1, 'One'),
      after: record(2, 'Two'),
      changedBy: 'test',
      changedAt: at(2),
    },
    {
      operation: 'updated',
      customerId: id,
      version: 3,
      before: record(2, 'Two'),
      after: record(3, 'Three'),
      changedBy: 'test',
      changedAt: at(3),
    },
  ];
}

describe('the replicator on its embedded database', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [replicator] });
  });
  afterAll(async () => app?.stop());

  it('converges to the newest version whatever the order and however many duplicates', async () => {
    const id = randomUUID();
    const [created, second, third] = changes(id) as [CustomerChange, CustomerChange, CustomerChange];
    for (const change of [third, created, second, third, created]) await app.publish(customerChanged, change);
    await app.waitFor(() => app.host.counters.of('customers.changed', 'replicator').acked === 5, 'five deliveries');
    const res = await app.request('GET', `/replica/customers/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, name: 'Three', version: 3 });
  });

  it('answers 404 once the customer is deleted, and a late update does not bring it back', async () => {
    const id = randomUUID();
    const [created, second] = changes(id) as [CustomerChange, CustomerChange];
    const deleted: CustomerChange = {
      operation: 'deleted',
      customerId: id,
      version: 3,
      before: second.after,
      after: null,
      changedBy: 'test',
      changedAt: new Date().toISOString(),
    };
    for (const change of [created, deleted, second]) await app.publish(customerChanged, change);
    await app.waitFor(
      () => app.host.counters.of('customers.changed', 'replicator').acked === 8,
      'three more deliveries',
    );
    expect((await app.request('GET', `/replica/customers/${id}`)).status).toBe(404);
    const status = await app.request('GET', '/replica/status');
    expect(status.body).toMatchObject({
      store: 'postgres',
      rows: 1,
      deleted: 1,
      lastApplied: { customerId: expect.any(String), version: expect.any(Number) },
    });
  });
});

describe('rebuild and verify against the source', () => {
  it('counts the differences, and a rebuild makes them zero', async () => {
    const source = await startTestHost({ services: [customers], config: { host: { port: 0, address: '127.0.0.1' } } });
    const address = await source.host.listen();
    const replica = await startTestHost({ services: [replicator], settings: { replicator: { sourceUrl: address } } });
    try {
      for (let i = 0; i < 5; i++)
        expect((await source.request('POST', '/customers', { name: `C${i}`, email: `c${i}@example.com` })).status).toBe(
          201,
        );
      const before = (await replica.host.runCommand('replicator', 'verify', undefined)) as {
        checked: number;
        missing: number;
      };
      expect(before).toMatchObject({ checked: 5, missing: 5, different: 0, extra: 0 });
      expect(await replica.host.runCommand('replicator', 'rebuild', undefined)).toEqual({ rows: 5 });
      const after = await replica.host.runCommand('replicator', 'verify', undefined);
      expect(after).toMatchObject({ checked: 5, missing: 0, different: 0, extra: 0 });
    } finally {
      await replica.stop();
      await source.stop();
    }
  });
});
