import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from './service.ts';
import { customerChanged, notificationRequested } from './streams.ts';

describe('customers CRUD over HTTP on embedded PGlite', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [customers], settings: { customers: { pageSize: 2 } } });
  });
  afterAll(async () => app.stop());

  it('creates, reads, lists, updates and deletes a customer', async () => {
    const created = await app.request('POST', '/customers', { name: 'Ada Lovelace', email: 'Ada@Example.com' });
    expect(created.status).toBe(201);
    const ada = created.body as { id: string; email: string; version: number; createdAt: string };
    expect(ada).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com', version: 1 });
    expect(created.headers.location).toBe(`/customers/${ada.id}`);
    expect(Date.parse(ada.createdAt)).not.toBeNaN();

    expect((await app.request('GET', `/customers/${ada.id}`)).body).toEqual(ada);

    const replaced = await app.request('PUT', `/customers/${ada.id}`, {
      name: 'Augusta Ada King',
      email: 'ada@example.org',
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ name: 'Augusta Ada King', email: 'ada@example.org', version: 2 });

    const patched = await app.request('PATCH', `/customers/${ada.id}`, { name: 'Ada' });
    expect(patched.body).toMatchObject({ name: 'Ada', email: 'ada@example.org', version: 3 });

    const deleted = await app.request('DELETE', `/customers/${ada.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await app.request('GET', `/customers/${ada.id}`)).status).toBe(404);
    expect((await app.request('DELETE', `/customers/${ada.id}`)).status).toBe(404);

    // Each change went out through the outbox, in order, with the record before and after.
    await app.waitFor(
      () => app.emitted(customerChanged).filter((c) => c.customerId === ada.id).length === 4,
      'four changes',
    );
    const changes = app.emitted(customerChanged).filter((c) => c.customerId === ada.id);
    expect(changes.map((c) => [c.operation, c.version])).toEqual([
      ['created', 1],
      ['updated', 2],
      ['updated', 3],
      ['deleted', 4],
    ]);
    expect(changes[0]).toMatchObject({ before: null, after: { email: 'ada@example.com' }, changedBy: 'api' });
    expect(changes[1]).toMatchObject({
      before: { name: 'Ada Lovelace' },
      after: { name: 'Augusta Ada King', version: 2 },
    });
    expect(changes[3]).toMatchObject({ before: { name: 'Ada', version: 3 }, after: null });
    await app.waitFor(
      () => app.emitted(notificationRequested).filter((n) => n.customerId === ada.id).length === 3,
      'three notifications',
    );
    const notifications = app.emitted(notificationRequested).filter((n) => n.customerId === ada.id);
    expect(notifications.map((n) => n.kind)).toEqual(['welcome', 'email-changed', 'goodbye']);
    expect(notifications[1]).toMatchObject({
      to: ['ada@example.org'],
      cc: ['ada@example.com'],
      previousEmail: 'ada@example.com',
    });
  });

  it('hides deleted customers and frees their email, while the snapshot keeps them', async () => {
    const first = await app.request('POST', '/customers', { name: 'Twice', email: 'twice@example.com' });
    const { id } = first.body as { id: string };
    expect((await app.request('DELETE', `/customers/${id}`)).status).toBe(204);
    expect((await app.request('GET', '/customers?email=twice')).body).toMatchObject({ total: 0 });
    expect((await app.request('POST', '/customers', { name: 'Twice again', email: 'twice@example.com' })).status).toBe(
      201,
    );
    const snapshot = await app.request('GET', '/customers-snapshot?limit=1000');
    const twice = (snapshot.body as { items: { id: string; deletedAt: string | null; version: number }[] }).items.find(
      (c) => c.id === id,
    );
    expect(twice).toMatchObject({ version: 2, deletedAt: expect.any(String) });
  });

  it('pages and filters the list by name and email', async () => {
    for (const [name, email] of [
      ['Grace Hopper', 'grace@navy.mil'],
      ['Alan Turing', 'alan@bletchley.uk'],
      ['Grace Kelly', 'kelly@monaco.mc'],
    ]) {
      expect((await app.request('POST', '/customers', { name, email })).status).toBe(201);
    }
    const first = await app.request('GET', '/customers?name=e');
    expect(first.body).toMatchObject({ total: 3, page: 1, pageSize: 2 });
    expect((first.body as { items: unknown[] }).items).toHaveLength(2);
    const second = await app.request('GET', '/customers?name=e&page=2');
    expect((second.body as { items: unknown[] }).items).toHaveLength(1);
    const graces = await app.request('GET', '/customers?name=grace&pageSize=10');
    expect((graces.body as { items: { name: string }[] }).items.map((c) => c.name).sort()).toEqual([
      'Grace Hopper',
      'Grace Kelly',
    ]);
    const byEmail = await app.request('GET', '/customers?email=BLETCHLEY');
    expect((byEmail.body as { items: { name: string }[] }).items.map((c) => c.name)).toEqual(['Alan Turing']);
    const literal = await app.request('GET', '/customers?name=%25');
    expect((literal.body as { total: number }).total).toBe(0);
  });

  it('answers 409 when the email is taken, whatever its case', async () => {
    expect((await app.request('POST', '/customers', { name: 'One', email: 'same@example.com' })).status).toBe(201);
    const again = await app.request('POST', '/customers', { name: 'Two', email: 'SAME@example.com' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_CONFLICT', status: 409 });
  });
});
