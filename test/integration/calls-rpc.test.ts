import { randomUUID } from 'node:crypto';
import { type GantryError, service, t } from 'gantry';
import { rpcTarget } from 'gantry/calls';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directory } from '../fixtures/calls/services.ts';

/** A caller whose one route runs an RPC named in the query and reports the outcome and its time. */
const caller = service({ name: 'rpc-caller', version: '1.0.0' }).post(
  '/call',
  {
    auth: 'public',
    body: t.Object({ target: t.String(), input: t.Unknown(), timeout: t.Optional(t.Integer()) }),
    response: t.Object({
      output: t.Optional(t.Unknown()),
      code: t.Optional(t.String()),
      details: t.Optional(t.Unknown()),
      ms: t.Number(),
    }),
  },
  async ({ body }, ctx) => {
    const started = performance.now();
    try {
      const output = await ctx.request(body.target, body.input, body.timeout ? { timeout: body.timeout } : {});
      return { output, ms: performance.now() - started };
    } catch (error) {
      const coded = error as GantryError;
      return { code: coded.code, details: coded.details, ms: performance.now() - started };
    }
  },
);

const TRANSPORTS = {
  nats: `nats://127.0.0.1:4222?prefix=t${randomUUID().slice(0, 8)}`,
  amqp: 'amqp://guest:guest@127.0.0.1:5672',
  redis: `redis://127.0.0.1:6379?prefix=test-${randomUUID().slice(0, 8)}:`,
};

for (const [name, url] of Object.entries(TRANSPORTS)) {
  describe(`RPC over ${name}`, () => {
    let server: TestHost;
    let client: TestHost;
    const secret = 'rpc-test-secret-of-at-least-32-characters';
    const host = { calls: { rpc: url }, auth: { serviceSecret: secret } };

    beforeAll(async () => {
      // Two hosts, as two instances would be: the directory answers, the caller asks, through the broker.
      server = await startTestHost({ services: [directory], config: { host } });
      client = await startTestHost({ services: [caller], config: { host } });
    });

    afterAll(async () => {
      await client?.stop();
      await server?.stop();
    });

    const call = async (body: Record<string, unknown>) =>
      (await client.request('POST', '/call', body)).body as {
        output?: unknown;
        code?: string;
        details?: unknown;
        ms: number;
      };

    it('round-trips a typed RPC', async () => {
      expect((await call({ target: 'directory.add', input: { a: 2, b: 40 } })).output).toEqual({ sum: 42 });
      expect(rpcTarget(directory, 'add').name).toBe('add');
    });

    it('answers a handler that throws with a typed error reply, and keeps serving', async () => {
      const failed = await call({ target: 'directory.fail', input: { reason: 'taken' } });
      expect(failed.code).toBe('GANTRY_ERR_HTTP_CONFLICT');
      expect(failed.details).toEqual({ reason: 'taken' });
      const invalid = await call({ target: 'directory.add', input: { a: 'x' } });
      expect(invalid.code).toBe('GANTRY_ERR_HTTP_VALIDATION');
      expect((await call({ target: 'directory.add', input: { a: 1, b: 1 } })).output).toEqual({ sum: 2 });
    });

    it('fails a call to a target that is down without hanging', async () => {
      const down = await call({ target: 'nobody.add', input: {}, timeout: 300 });
      expect(['GANTRY_ERR_CALL_TIMEOUT', 'GANTRY_ERR_CALL_NO_INSTANCE']).toContain(down.code);
      expect(down.ms).toBeLessThan(1_000);
      const slow = await call({ target: 'directory.sleep', input: { ms: 2_000 }, timeout: 200 });
      expect(slow.code).toBe('GANTRY_ERR_CALL_TIMEOUT');
      expect(slow.ms).toBeLessThan(600);
    });
  });
}
