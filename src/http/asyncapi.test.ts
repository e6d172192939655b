import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { t } from '../schema/index.ts';
import { service } from '../service/service.ts';
import { defineStream } from '../service/stream.ts';
import { startTestHost } from '../testing/index.ts';

const placed = defineStream('orders.placed', t.Object({ orderId: t.String(), total: t.Number() }), {
  description: 'an order was placed',
});
const shipped = defineStream('orders.shipped', t.Object({ orderId: t.String() }));

const orders = service({ name: 'orders', version: '1.2.0' })
  .emits(placed)
  .on(shipped, { group: 'orders' }, async () => undefined);
const shipping = service({ name: 'shipping', version: '1.0.0' })
  .emits(shipped)
  .on(placed, { maxAttempts: 3 }, async () => undefined);

describe('the AsyncAPI document', () => {
  it('describes every stream sent and received, with payload schemas, and passes the AsyncAPI parser', async () => {
    const app = await startTestHost({ services: [orders, shipping] });
    try {
      const res = await app.request('GET', '/asyncapi.json');
      expect(res.status).toBe(200);
      const document = res.body as {
        channels: Record<string, unknown>;
        operations: Record<string, { action: string }>;
      };
      const { diagnostics, document: parsed } = await new Parser().parse(JSON.stringify(document));
      const errors = diagnostics.filter((d) => d.severity === 0);
      expect(errors).toEqual([]);
      expect(parsed).toBeDefined();
      expect(Object.keys(document.channels).sort()).toEqual([
        'orders.placed',
        'orders.placed.dlq',
        'orders.shipped',
        'orders.shipped.dlq',
      ]);
      expect(
        Object.entries(document.operations)
          .map(([id, op]) => `${id}:${op.action}`)
          .sort(),
      ).toEqual([
        'orders.receiveOrdersShipped.orders:receive',
        'orders.sendOrdersPlaced:send',
        'shipping.receiveOrdersPlaced.shipping:receive',
        'shipping.sendOrdersShipped:send',
      ]);
      const payload = parsed?.components().messages().get('OrdersPlaced')?.payload()?.json();
      expect(payload).toMatchObject({ type: 'object', required: ['orderId', 'total'] });
    } finally {
      await app.stop();
    }
  });
});
