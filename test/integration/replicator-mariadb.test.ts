import { randomUUID } from 'node:crypto';
import { startTestHost, type TestHost } from 'gantry/testing';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Customer } from '../../examples/customers/model.ts';
import { type CustomerChange, customerChanged } from '../../examples/customers/streams.ts';
import { replicator } from '../../examples/replicator/service.ts';

const URL = 'mysql://root@127.0.0.1:3306/test';
const table = `replica_it_${randomUUID().slice(0, 8)}`;

describe('the replicator on MariaDB', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({
      services: [replicator],
      config: { services: { replicator: { drivers: { replica: { url: URL, table } } } } },
    });
  });
  afterAll(async () => {
    await app?.stop();
    const connection = await createConnection({ uri: URL });
    await connection.query(`drop table if exists \`${table}\``);
    await connection.end();
  });

  it('applies version-guarded upserts: duplicates and out-of-order changes converge, deletes become 404', async () => {
    const id = randomUUID();
    const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
    const record = (version: number, name: string): Customer => ({
      id,
      name,
      email: `${name}@example.com`,
      version,
      createdAt: at(0),
      updatedAt: at(version),
    });
    const created: CustomerChange = {
      operation: 'created',
      customerId: id,
      version: 1,
      before: null,
      after: record(1, 'one'),
      changedBy: 't',
      changedAt: at(1),
    };
    const updated: CustomerChange = {
      operation: 'updated',
      customerId: id,
      version: 2,
      before: record(1, 'one'),
      after: record(2, 'two'),
      changedBy: 't',
      changedAt: at(2),
    };
    for (const change of [updated, created, updated]) await app.publish(customerChanged, change);
    await app.waitFor(() => app.host.counters.of('customers.changed', 'replicator').acked === 3, 'three deliveries');
    expect((await app.request('GET', `/replica/customers/${id}`)).body).toEqual(record(2, 'two'));
    const deleted: CustomerChange = {
      operation: 'deleted',
      customerId: id,
      version: 3,
      before: record(2, 'two'),
      after: null,
      changedBy: 't',
      changedAt: at(3),
    };
    await app.publish(customerChanged, deleted);
    await app.publish(customerChanged, updated);
    await app.waitFor(() => app.host.counters.of('customers.changed', 'replicator').acked === 5, 'two more deliveries');
    expect((await app.request('GET', `/replica/customers/${id}`)).status).toBe(404);
    expect((await app.request('GET', '/replica/status')).body).toMatchObject({
      store: 'mysql',
      rows: 0,
      deleted: 1,
      lastApplied: { customerId: id, version: 3 },
    });
  });
});
