import { Validator } from '@seriousme/openapi-schema-validator';
import { defineStream, GantryError, service, t } from 'gantry';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';

const audited = defineStream('hello.audited', t.Object({ who: t.String() }));

const probe = service({ name: 'probe', version: '2.1.0' })
  .emits(audited)
  .get(
    '/probe/slow',
    { query: t.Object({ ms: t.Integer({ minimum: 0 }) }), response: t.Object({ slept: t.Integer() }), timeout: 100 },
    async ({ query }, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, query.ms));
      ctx.signal.throwIfAborted();
      return { slept: query.ms };
    },
  )
  .get('/probe/boom', { response: t.Object({ ok: t.Boolean() }) }, async () => {
    throw new Error('database password is hunter2');
  })
  .get('/probe/refused', { response: t.Object({ ok: t.Boolean() }) }, async () => {
    throw new GantryError('GANTRY_ERR_HTTP_CONFLICT', 'already done');
  })
  .post('/probe/audit', { body: t.Object({ who: t.String() }), response: { 202: null } }, async ({ body }, ctx) => {
    ctx.log.info({ who: body.who }, 'auditing');
    await ctx.emit(audited, { who: body.who });
    return undefined;
  });

describe('the host over HTTP', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [customers, probe] });
  });
  afterAll(async () => app.stop());

  it('serves an OpenAPI 3.1 document that passes a validator and documents every route and error', async () => {
    const res = await app.request('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const document = res.body as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { operationId: string; tags: string[]; responses: Record<string, unknown> }>
      >;
    };
    const validator = new Validator();
    const result = await validator.validate(document as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/customers',
      '/customers-snapshot',
      '/customers/{id}',
      '/probe/audit',
      '/probe/boom',
      '/probe/refused',
      '/probe/slow',
    ]);
    const getOne = document.paths['/customers/{id}']?.get;
    expect(getOne?.operationId).toBe('customers.getCustomersById');
    expect(getOne?.tags).toEqual(['customers']);
    expect(Object.keys(getOne?.responses ?? {}).sort()).toEqual(['200', '400', '404', '500', '503', '504']);
    const create = document.paths['/customers']?.post;
    expect(Object.keys(create?.responses ?? {}).sort()).toEqual([
      '201',
      '400',
      '409',
      '413',
      '415',
      '500',
      '503',
      '504',
    ]);
    const operationIds = Object.values(document.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(new Set(operationIds).size).toBe(operationIds.length);
  });

  it('serves the docs UI from local assets', async () => {
    const page = await app.request('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/https?:\/\//);
    const script = await app.request('GET', '/docs/assets/swagger-ui-bundle.js');
    expect(script.status).toBe(200);
    expect(script.text.length).toBeGreaterThan(100_000);
  });

  it('answers 504 when an event outlives its timeout', async () => {
    const res = await app.request('GET', '/probe/slow?ms=400');
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_EVENT_TIMEOUT' });
    expect((await app.request('GET', '/probe/slow?ms=1')).body).toEqual({ slept: 1 });
  });

  it('answers 500 to an unhandled error with the request id, logging the stack but never returning it', async () => {
    const res = await app.request('GET', '/probe/boom', undefined, { 'x-request-id': 'boom-1' });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_INTERNAL', requestId: 'boom-1' });
    expect(res.text).not.toContain('hunter2');
    expect(res.text).not.toContain('at ');
    const failed = app.logs.where('requestId', 'boom-1').find((line) => line.msg === 'FAILED');
    expect(JSON.stringify(failed)).toContain('hunter2');
    expect((failed?.err as { stack?: string } | undefined)?.stack).toContain('http-host.test.ts');
  });

  it('answers a coded error with its status', async () => {
    expect((await app.request('GET', '/probe/refused')).status).toBe(409);
  });

  it('carries the X-Request-Id into every log line of the request and into what it emits', async () => {
    const requestId = 'req-abc-123';
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await app.request('POST', '/probe/audit', { who: 'ada' }, { 'x-request-id': requestId, traceparent });
    expect(res.status).toBe(202);
    expect(res.headers['x-request-id']).toBe(requestId);
    const lines = app.logs.where('requestId', requestId);
    expect(lines.map((l) => l.msg)).toEqual(['START', 'auditing', 'DONE']);
    for (const line of lines)
      expect(line).toMatchObject({
        service: 'probe',
        version: '2.1.0',
        event: 'POST /probe/audit',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      });
    expect(lines.at(-1)).toMatchObject({ status: 202, durationMs: expect.any(Number) });
    const [envelope] = app.envelopes('hello.audited');
    expect(envelope?.requestid).toBe(requestId);
    expect(envelope?.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(envelope?.source).toBe('probe@2.1.0');
  });

  it('makes a request id when none or an unsafe one is sent, and echoes it', async () => {
    const res = await app.request('GET', '/customers', undefined, { 'x-request-id': 'bad id\nwith newline' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('tells what it runs at /, and health at /health/*', async () => {
    const root = await app.request('GET', '/');
    expect(root.body).toMatchObject({
      env: 'test',
      services: [
        { name: 'customers', version: '1.1.0' },
        { name: 'probe', version: '2.1.0' },
      ],
    });
    expect((await app.request('GET', '/health/live')).status).toBe(200);
    const ready = await app.request('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, checks: { bus: { ok: true }, 'customers.db': { ok: true } } });
  });
});
