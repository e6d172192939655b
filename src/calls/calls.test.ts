import { type GantryError, service, t } from 'gantry';
import { rpcTarget, workTarget } from 'gantry/calls';
import { startTestHost } from 'gantry/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { directory } from '../../test/fixtures/calls/services.ts';
import type { CallResult, RouteOf } from './types.ts';

/** The caller: each route calls the directory another way. */
const front = service({ name: 'front', version: '1.0.0' })
  .get(
    '/lookup/:id',
    {
      auth: 'public',
      params: t.Object({ id: t.String() }),
      response: t.Object({ status: t.Integer(), body: t.Unknown() }),
    },
    async ({ params }, ctx) => {
      const found = await ctx.client(directory).get('/customers/:id', { params: { id: params.id } });
      return { status: found.status, body: found.body };
    },
  )
  .get('/sum', { auth: 'public', response: t.Object({ sum: t.Number() }) }, async (_input, ctx) =>
    ctx.request(rpcTarget(directory, 'add'), { a: 2, b: 3 }),
  )
  .get('/fail', { auth: 'public', response: t.Object({ code: t.String(), status: t.Integer() }) }, async (_i, ctx) => {
    try {
      await ctx.request(rpcTarget(directory, 'fail'), { reason: 'taken' });
      return { code: 'none', status: 0 };
    } catch (error) {
      const coded = error as GantryError;
      return { code: coded.code, status: coded.status };
    }
  })
  .get('/who', { auth: 'public', response: t.Object({ caller: t.String() }) }, async (_input, ctx) => {
    const answer = await ctx.client(directory).get('/whoami');
    return answer.body;
  })
  .post('/note', { auth: 'public', response: { 202: null } }, async (_input, ctx) => {
    await ctx.send(workTarget(directory, 'record'), { note: 'hello' });
    return undefined as never;
  });

describe('calls between services hosted together', () => {
  it('calls a typed route, answers a declared 404 as a result, runs RPCs and a work queue', async () => {
    const app = await startTestHost({
      services: [directory, front],
      config: { host: { auth: { serviceSecret: 'a-test-secret-of-at-least-32-characters' } } },
    });
    try {
      expect((await app.request('GET', '/lookup/ada')).body).toEqual({
        status: 200,
        body: { id: 'ada', name: 'Ada', email: 'ada@example.com' },
      });
      expect((await app.request('GET', '/lookup/bob')).body).toEqual({ status: 404, body: { missing: 'bob' } });
      expect((await app.request('GET', '/sum')).body).toEqual({ sum: 5 });
      // The call carried the service token the directory's `service` auth verifies.
      expect((await app.request('GET', '/who')).body).toEqual({ caller: 'front' });
      expect((await app.request('GET', '/whoami')).status).toBe(401);
      expect((await app.request('GET', '/fail')).body).toEqual({ code: 'GANTRY_ERR_HTTP_CONFLICT', status: 409 });
      expect((await app.request('POST', '/note')).status).toBe(202);
      await app.waitFor(
        () => app.logs.lines.some((line) => line.msg === 'recorded'),
        'the work queue handled the note',
      );
    } finally {
      await app.stop();
    }
  });

  it('types paths, inputs and answers from the target service', () => {
    type Client = ReturnType<Parameters<Parameters<typeof front.get>[2]>[1]['client']>;
    expectTypeOf<Client>().toBeObject();
    type Lookup = CallResult<
      (typeof directory)['~api'] extends infer A ? RouteOf<NonNullable<A>, 'GET', '/customers/:id'> : never
    >;
    expectTypeOf<Extract<Lookup, { status: 404 }>['body']>().toEqualTypeOf<{ missing: string }>();
    expectTypeOf<Extract<Lookup, { status: 200 }>['ok']>().toEqualTypeOf<true>();
    const check = async (ctx: Parameters<Parameters<typeof front.get>[2]>[1]) => {
      const found = await ctx.client(directory).get('/customers/:id', { params: { id: 'x' } });
      if (found.status === 200) expectTypeOf(found.body.email).toEqualTypeOf<string>();
      else expectTypeOf(found.body).toEqualTypeOf<{ missing: string }>();
      // @ts-expect-error the id must be a string
      await ctx.client(directory).get('/customers/:id', { params: { id: 42 } });
      // @ts-expect-error no such route
      await ctx.client(directory).get('/nowhere');
      // @ts-expect-error the body is required
      await ctx.client(directory).post('/customers', {});
      const sum = await ctx.request(rpcTarget(directory, 'add'), { a: 1, b: 2 });
      expectTypeOf(sum).toEqualTypeOf<{ sum: number }>();
      // @ts-expect-error b must be a number
      await ctx.request(rpcTarget(directory, 'add'), { a: 1, b: '2' });
      // @ts-expect-error no such RPC
      rpcTarget(directory, 'nope');
    };
    expectTypeOf(check).toBeFunction();
  });
});
