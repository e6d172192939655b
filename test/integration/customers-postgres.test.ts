import { randomUUID } from 'node:crypto';
import { startTestHost, type TestHost } from 'gantry/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `gantry_customers_${randomUUID().slice(0, 8)}`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('customers CRUD on the real PostgreSQL', () => {
  let app: TestHost;
  beforeAll(async () => {
    await admin(`create database ${database}`);
    app = await startTestHost({
      services: [customers],
      environment: { DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}` },
    });
  });
  afterAll(async () => {
    await app?.stop();
    await admin(`drop database if exists ${database} with (force)`);
  });

  it('runs on PostgreSQL, not the embedded database', async () => {
    expect((app.host.runtime('customers').clients.db as { kind: string }).kind).toBe('postgres');
    const ready = await app.request('GET', '/health/ready');
    expect(ready.body).toMatchObject({ ready: true, checks: { 'customers.db': { ok: true } } });
  });

  it('creates, reads, lists, updates, conflicts and deletes', async () => {
    const created = await app.request('POST', '/customers', { name: 'Edsger Dijkstra', email: 'ewd@utexas.edu' });
    expect(created.status).toBe(201);
    const { id } = created.body as { id: string };
    expect((await app.request('GET', `/customers/${id}`)).body).toMatchObject({ name: 'Edsger Dijkstra', version: 1 });
    expect((await app.request('POST', '/customers', { name: 'Copy', email: 'EWD@utexas.edu' })).status).toBe(409);
    const listed = await app.request('GET', '/customers?email=utexas');
    expect(listed.body).toMatchObject({ total: 1, items: [{ id }] });
    expect((await app.request('PATCH', `/customers/${id}`, { email: 'edsger@example.nl' })).body).toMatchObject({
      email: 'edsger@example.nl',
      version: 2,
    });
    expect((await app.request('DELETE', `/customers/${id}`)).status).toBe(204);
    expect((await app.request('GET', `/customers/${id}`)).status).toBe(404);
  });

  it('recorded its migration in the service schema', async () => {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${database}` });
    await client.connect();
    try {
      const { rows } = await client.query('select name from gantry_customers.__gantry_migrations');
      expect(rows.map((r: { name: string }) => r.name)).toEqual(['0000_init', '0001_soft_delete']);
    } finally {
      await client.end();
    }
  });
});
