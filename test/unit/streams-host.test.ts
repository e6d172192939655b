import { defineStream, type HostPlugin, service, t } from 'gantry';
import { startTestHost } from 'gantry/testing';
import { describe, expect, it } from 'vitest';

const orderPlaced = defineStream('orders.placed', t.Object({ orderId: t.String(), total: t.Number({ minimum: 0 }) }), {
  key: (o) => o.orderId,
});
const auditSeen: string[] = [];
const shippingSeen: { orderId: string; attempt: number; requestId: string }[] = [];
let failuresLeft = 0;

const orders = service({ name: 'orders', version: '1.0.0' })
  .emits(orderPlaced)
  .post(
    '/orders',
    { body: t.Object({ orderId: t.String(), total: t.Number() }), response: { 202: null } },
    async ({ body }, ctx) => {
      await ctx.emit(orderPlaced, body);
      return undefined;
    },
  );

const audit = service({ name: 'audit', version: '1.0.0' }).on(orderPlaced, {}, async (order) => {
  auditSeen.push(order.orderId);
});

const shipping = service({ name: 'shipping', version: '1.0.0' }).on(
  orderPlaced,
  { maxAttempts: 3, backoffMs: 10 },
  async (order, ctx) => {
    if (failuresLeft > 0) {
      failuresLeft--;
      throw new Error('carrier unavailable');
    }
    shippingSeen.push({ orderId: order.orderId, attempt: ctx.message.attempt, requestId: ctx.tracking.requestId });
  },
);

describe('stream events in a host', () => {
  it('delivers to every consuming service, retries failures and dead-letters after the maximum', async () => {
    const events: string[] = [];
    const observer: HostPlugin = {
      name: 'observer',
      register: (api) => {
        api.hook('onEventEnd', (run) => events.push(`${run.service.name}:${run.outcome}`));
        api.hook('onDeadLetter', (info) => events.push(`dead:${info.stream}`));
      },
    };
    const app = await startTestHost({ services: [orders, audit, shipping], plugins: [observer] });
    try {
      failuresLeft = 2;
      const res = await app.request(
        'POST',
        '/orders',
        { orderId: 'o-1', total: 10 },
        { 'x-request-id': 'order-req-1' },
      );
      expect(res.status).toBe(202);
      await app.waitFor(() => auditSeen.includes('o-1') && shippingSeen.length === 1, 'both consumers');
      expect(shippingSeen[0]).toEqual({ orderId: 'o-1', attempt: 3, requestId: 'order-req-1' });
      expect(app.envelopes('orders.placed')[0]?.subject).toBe('o-1');

      failuresLeft = 3;
      await app.request('POST', '/orders', { orderId: 'o-2', total: 5 });
      await app.waitFor(() => events.includes('dead:orders.placed'), 'the dead letter');
      expect(shippingSeen.map((s) => s.orderId)).toEqual(['o-1']);
      const counters = app.host.counters.of('orders.placed', 'shipping');
      expect(counters).toMatchObject({ acked: 1, retried: 4, deadLettered: 1 });

      await app.publish('orders.placed', { orderId: 'o-3', total: -1 });
      await app.waitFor(
        () => app.host.counters.of('orders.placed', 'audit').deadLettered === 1,
        'the invalid message to be dead-lettered',
      );
      expect(auditSeen).not.toContain('o-3');
    } finally {
      await app.stop();
    }
  });

  it('refuses to emit to a stream the service did not declare', async () => {
    const rogue = service({ name: 'rogue', version: '1.0.0' }).post(
      '/x',
      { response: { 204: null } },
      async (_input, ctx) => {
        await ctx.emit(orderPlaced, { orderId: 'x', total: 1 });
        return undefined;
      },
    );
    const app = await startTestHost({ services: [rogue] });
    try {
      const res = await app.request('POST', '/x');
      expect(res.status).toBe(500);
      expect(app.logs.lines.some((l) => JSON.stringify(l).includes('GANTRY_ERR_STREAM_UNDECLARED'))).toBe(true);
    } finally {
      await app.stop();
    }
  });
});

describe('service loops and lifecycle hooks', () => {
  it('runs setup before serving, restarts a crashed loop, and stops it and runs shutdown on stop', async () => {
    const order: string[] = [];
    let runs = 0;
    const ticker = service({ name: 'ticker', version: '1.0.0' })
      .setup(() => {
        order.push('setup');
      })
      .loop(
        'tick',
        async (ctx) => {
          runs++;
          if (runs === 1) throw new Error('first run crashes');
          order.push('loop running');
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          order.push('loop stopped');
        },
        { restartDelayMs: 20 },
      )
      .shutdown(() => {
        order.push('shutdown');
      });
    const app = await startTestHost({ services: [ticker] });
    await app.waitFor(() => order.includes('loop running'), 'the loop to restart');
    await app.stop();
    expect(runs).toBe(2);
    expect(order).toEqual(['setup', 'loop running', 'loop stopped', 'shutdown']);
    expect(app.logs.lines.some((l) => l.msg === 'loop crashed; restarting')).toBe(true);
  });

  it('rejects an unknown hook name when a plugin registers it', async () => {
    const broken: HostPlugin = {
      name: 'broken',
      register: (api) => api.hook('onNothing' as 'onStart', () => undefined),
    };
    await expect(startTestHost({ services: [orders], plugins: [broken] })).rejects.toMatchObject({
      code: 'GANTRY_ERR_HOOK_UNKNOWN',
    });
  });
});
