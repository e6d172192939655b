import { randomBytes } from 'node:crypto';
import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBus, openAmqpBus } from '../../src/bus/amqp/index.ts';
import type { Bus, Delivery } from '../../src/bus/bus.ts';
import { createEnvelope, type Envelope } from '../../src/bus/envelope.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { GantryError } from '../../src/errors/gantry-error.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';
import { startRabbitMqBroker } from './brokers/rabbitmq.ts';

const server = process.env.GANTRY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
// Unique per run: every queue this file declares starts with the exchange name, and afterAll deletes them all.
const exchange = `gantry-it-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const CLAIM_TIMEOUT_MS = 1_000;
const busUrl = (options = ''): string => `${server}/?exchange=${exchange}&claimTimeoutMs=${CLAIM_TIMEOUT_MS}${options}`;

let admin: ChannelModel;
let adminChannel: ConfirmChannel;
const opened: Bus[] = [];
/** Every (stream, group) subscribed through a bus of this file, for the cleanup. */
const groups = new Map<string, { stream: string; group: string }>();

/** Opens a bus on the shared broker that records the groups it subscribes, so afterAll can delete their queues. */
async function openBus(options = ''): Promise<AmqpBus> {
  const bus = await resolveBus(busUrl(options), { instanceId: 'it-amqp' });
  if (!(bus instanceof AmqpBus)) throw new Error(`amqp:// resolved to ${bus.kind}`);
  const subscribe = bus.subscribe.bind(bus);
  bus.subscribe = (stream, group, onDelivery, subscribeOptions) => {
    groups.set(`${stream}\u0000${group}`, { stream, group });
    return subscribe(stream, group, onDelivery, subscribeOptions);
  };
  opened.push(bus);
  return bus;
}

beforeAll(async () => {
  // Fails the whole file, rather than skipping it, when no broker answers.
  admin = await connect(server);
  adminChannel = await admin.createConfirmChannel();
});

afterAll(async () => {
  await Promise.allSettled(opened.map((bus) => bus.close()));
  const cleaner = await openAmqpBus(new URL(busUrl()), { instanceId: 'it-amqp-cleanup' });
  for (const { stream, group } of groups.values()) await cleaner.deleteGroup(stream, group);
  await cleaner.close();
  await adminChannel.deleteQueue(`${exchange}:dead-letter`);
  await adminChannel.deleteExchange(`${exchange}:dead-letter`);
  await adminChannel.deleteExchange(exchange);
  await admin.close();
});

runBusConformance({
  name: 'amqp',
  create: () => openBus(),
  claimTimeoutMs: CLAIM_TIMEOUT_MS,
  injectRaw: async (stream, body) => {
    // A foreign producer: no ce- headers, no content type, a body that is not JSON.
    adminChannel.publish(exchange, stream, Buffer.from(body), { persistent: true });
    await adminChannel.waitForConfirms();
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (label: string): string => `it.${label}.${randomBytes(4).toString('hex')}`;
const message = (stream: string, n: number): Envelope => createEnvelope({ stream, data: { n }, source: 'it@1.0.0' });
const numberOf = (delivery: Delivery): number => {
  if (delivery.envelope === null) throw new Error(`undecodable delivery: ${delivery.decodeError}`);
  return (delivery.envelope.data as { n: number }).n;
};

describe('amqp bus', () => {
  it('is chosen by the amqp:// scheme, and refuses an unknown option naming it', async () => {
    const bus = await openBus();
    expect(bus.kind).toBe('amqp');
    const refused = await resolveBus(`${server}/?claimTimeout=5`, { instanceId: 'x' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GantryError);
    expect(refused).toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
      message: expect.stringContaining("'claimTimeout'"),
    });
  });

  it('refuses to subscribe over a queue of the same name declared with other arguments', async () => {
    const bus = await openBus();
    const stream = unique('clash');
    groups.set(`${stream}\u0000g`, { stream, group: 'g' });
    await adminChannel.assertQueue(bus.names.groupQueue(stream, 'g'), { durable: true });
    const refused = await bus
      .subscribe(stream, 'g', async (d) => d.ack(), { concurrency: 1, consumerName: 'c1' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
      message: expect.stringContaining('inequivalent arg'),
    });
    // The bus itself is unharmed.
    await bus.publish(stream, message(stream, 1));
  });

  it('fails to open with a clear error when no broker answers', async () => {
    const refused = await resolveBus('amqp://guest:secret@127.0.0.1:1/?connectTimeoutMs=0', { instanceId: 'x' }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(GantryError);
    expect(refused).toMatchObject({
      code: 'GANTRY_ERR_BUS_UNAVAILABLE',
      message: expect.stringContaining('127.0.0.1:1'),
    });
    expect((refused as Error).message).not.toContain('secret');
  });

  it('redelivers a retried message no sooner than its delay, with the attempt counted', async () => {
    const bus = await openBus();
    const stream = unique('delay');
    const seen: { attempt: number; at: number }[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push({ attempt: d.attempt, at: Date.now() });
        if (d.attempt < 3) await d.retry(d.attempt === 1 ? 400 : 150);
        else await d.ack();
      },
      { concurrency: 4, consumerName: 'c1' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 3, 'three attempts');
    const [a, b, c] = seen as [
      { attempt: number; at: number },
      { attempt: number; at: number },
      { attempt: number; at: number },
    ];
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(b.at - a.at).toBeGreaterThanOrEqual(400);
    expect(c.at - b.at).toBeGreaterThanOrEqual(150);
    await sub.stop();
  });

  it('counts messages waiting in a retry queue in the lag', async () => {
    const bus = await openBus();
    const stream = unique('retry-lag');
    let retried = 0;
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        retried++;
        await d.retry(60_000);
      },
      { concurrency: 1, consumerName: 'c1' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => retried === 1, 'the retry');
    await sub.stop();
    await waitFor(async () => (await bus.stats(stream, 'g')).lag === 1, 'a lag of one');
  });

  it('keeps a subscriber with a hung handler working on its other slots, and redelivers the hung message', async () => {
    const bus = await openBus();
    const stream = unique('hung');
    let running = 0;
    let peak = 0;
    const handled: { n: number; attempt: number }[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        running++;
        peak = Math.max(peak, running);
        try {
          // The first delivery of message 0 hangs for good, as a handler stuck on a dead socket would.
          if (numberOf(d) === 0 && d.attempt === 1) await new Promise(() => undefined);
          await sleep(10);
          handled.push({ n: numberOf(d), attempt: d.attempt });
          await d.ack();
        } finally {
          running--;
        }
      },
      { concurrency: 2, consumerName: 'c1' },
    );
    for (let n = 0; n < 20; n++) await bus.publish(stream, message(stream, n));
    await waitFor(
      () => handled.length === 20,
      'all 20 messages, message 0 after its claim timeout',
      CLAIM_TIMEOUT_MS * 5,
    );
    expect(handled.find((h) => h.n === 0)?.attempt).toBe(2);
    expect(new Set(handled.map((h) => h.n)).size).toBe(20);
    // The hung handler still holds one of the two slots: never more than two handlers at once.
    expect(peak).toBeLessThanOrEqual(2);
    // Stopping does not wait for the hung handler: its message was given back long ago.
    await sub.stop();
  });

  it('settles out-of-order acks, retries and give-backs each exactly once (coalesced acks)', async () => {
    const bus = await openBus();
    const stream = unique('settle-mix');
    const total = 300;
    const acked = new Map<number, number>();
    let deliveries = 0;
    let settleErrors = 0;
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        deliveries++;
        const n = numberOf(d);
        await sleep(Math.floor(Math.random() * 15));
        try {
          if (d.attempt === 1 && n % 5 === 0) return await d.retry(0);
          // Returning without settling gives the message back.
          if (d.attempt === 1 && n % 7 === 0) return;
          await d.ack();
          acked.set(n, (acked.get(n) ?? 0) + 1);
        } catch {
          settleErrors++;
        }
      },
      { concurrency: 25, consumerName: 'c1' },
    );
    await Promise.all(Array.from({ length: total }, (_, n) => bus.publish(stream, message(stream, n))));
    await waitFor(() => acked.size === total, `all ${total} messages acked`, 15_000);
    // A wrong multiple-ack would ack a message still in hand; its later ack then fails and closes the channel, and
    // the broker delivers everything in hand again. Nothing of that may show.
    await sleep(CLAIM_TIMEOUT_MS + 500);
    const retried = Math.ceil(total / 5);
    const givenBack = [...Array(total).keys()].filter((n) => n % 7 === 0 && n % 5 !== 0).length;
    expect(settleErrors).toBe(0);
    expect([...acked.values()].every((count) => count === 1)).toBe(true);
    expect(deliveries).toBe(total + retried + givenBack);
    expect((await bus.stats(stream, 'g')).lag).toBe(0);
    await sub.stop();
  });

  it('gives back a message whose handler returned without settling it, counting the attempt', async () => {
    const bus = await openBus();
    const stream = unique('unsettled');
    const attempts: number[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        attempts.push(d.attempt);
        if (d.attempt >= 2) await d.ack();
      },
      { concurrency: 1, consumerName: 'c1' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => attempts.length === 2, 'the second attempt');
    expect(attempts).toEqual([1, 2]);
    await sub.stop();
  });
});

describe('amqp bus across a broker restart', () => {
  it('handles every one of 2,000 messages when the broker stops and starts mid-way', async () => {
    const broker = await startRabbitMqBroker();
    const buses: Bus[] = [];
    try {
      const options = 'claimTimeoutMs=5000&publishTimeoutMs=60000&reconnectMaxDelayMs=500';
      const producer = await openAmqpBus(new URL(`${broker.url}/?${options}`), { instanceId: 'it-restart-producer' });
      const consumer = await openAmqpBus(new URL(`${broker.url}/?${options}`), { instanceId: 'it-restart-consumer' });
      const impatient = await openAmqpBus(new URL(`${broker.url}/?publishTimeoutMs=300`), {
        instanceId: 'it-impatient',
      });
      buses.push(producer, consumer, impatient);
      const stream = unique('restart');
      const handled = new Set<number>();
      let deliveries = 0;
      const sub = await consumer.subscribe(
        stream,
        'g',
        async (d) => {
          deliveries++;
          handled.add(numberOf(d));
          // An ack lost in the outage fails; the broker has requeued the message and delivers it again.
          await d.ack().catch(() => undefined);
        },
        { concurrency: 50, consumerName: 'c1' },
      );
      const total = 2_000;
      let published = 0;
      // publish() rides through the outage: it waits for the reconnection and publishes again (publishTimeoutMs).
      const publishing = (async () => {
        for (let n = 0; n < total; n += 20) {
          await Promise.all(Array.from({ length: 20 }, (_, i) => producer.publish(stream, message(stream, n + i))));
          published += 20;
          await sleep(2);
        }
      })();
      await waitFor(() => published >= 600, '600 messages published', 30_000);
      await broker.stop();
      expect(await producer.check()).toMatchObject({ ok: false });
      // With a short publishTimeoutMs, a publish fails with a clear, retryable error instead of waiting.
      const started = Date.now();
      const refused = await impatient.publish(stream, message(stream, -1)).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'GANTRY_ERR_BUS_UNAVAILABLE', retryable: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      await broker.start();
      await publishing;
      await waitFor(() => handled.size === total, `all ${total} messages handled`, 60_000);
      expect(await consumer.check()).toEqual({ ok: true });
      expect(deliveries).toBeGreaterThanOrEqual(total);
      await sub.stop();
      await waitFor(async () => (await consumer.stats(stream, 'g')).lag === 0, 'no lag left');
    } finally {
      await Promise.allSettled(buses.map((bus) => bus.close()));
      await broker.remove();
    }
  }, 180_000);
});
