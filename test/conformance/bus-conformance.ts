import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Delivery, Subscription } from '../../src/bus/bus.ts';
import { startConsumer } from '../../src/bus/consumer.ts';
import { CounterBook } from '../../src/bus/counters.ts';
import { createEnvelope, type Envelope } from '../../src/bus/envelope.ts';
import { t } from '../../src/schema/index.ts';
import type { ConsumerDef } from '../../src/service/service.ts';
import { defineStream } from '../../src/service/stream.ts';
import { waitFor } from '../../src/testing/index.ts';

/** How the suite reaches one adapter. */
export interface BusConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** Opens a new bus connected to the backend under test; each call is a separate client (a separate "process"). */
  create: () => Promise<Bus>;
  /**
   * How long the adapter waits before it hands a never-settled message to another consumer of the group. Keep it
   * at 800 ms or more: the suite's slow handlers must finish within it.
   */
  claimTimeoutMs: number;
  /**
   * Writes raw bytes to a stream as a foreign producer would (no Gantry envelope), to check poison-message
   * handling. Omitted only for the in-memory bus, which has no wire format.
   */
  injectRaw?: (stream: string, body: string) => Promise<void>;
}

const Item = t.Object({ n: t.Integer() });

function uniqueStream(label: string): string {
  return `conf.${label}.${randomUUID().slice(0, 8)}`;
}

function envelope(stream: string, n: number, key?: string): Envelope {
  return createEnvelope({ stream, data: { n }, source: 'conformance@1.0.0', ...(key !== undefined ? { key } : {}) });
}

interface Collector {
  seen: { n: number; attempt: number; consumer: string }[];
  subscription: Subscription;
}

async function collect(
  bus: Bus,
  stream: string,
  group: string,
  consumer: string,
  options: { concurrency?: number; handle?: (d: Delivery) => Promise<void> } = {},
): Promise<Collector> {
  const seen: Collector['seen'] = [];
  const subscription = await bus.subscribe(
    stream,
    group,
    async (delivery) => {
      seen.push({
        n: (delivery.envelope?.data as { n: number } | undefined)?.n ?? -1,
        attempt: delivery.attempt,
        consumer,
      });
      if (options.handle) await options.handle(delivery);
      else await delivery.ack();
    },
    { concurrency: options.concurrency ?? 8, consumerName: consumer },
  );
  return { seen, subscription };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The behaviour every bus adapter must show, run against a real backend. Each test uses its own stream names.
 */
export function runBusConformance(options: BusConformanceOptions): void {
  describe(`bus conformance: ${options.name}`, () => {
    const opened: Bus[] = [];
    let bus: Bus;
    const open = async (): Promise<Bus> => {
      const created = await options.create();
      opened.push(created);
      return created;
    };

    beforeAll(async () => {
      bus = await open();
    });

    afterAll(async () => {
      for (const b of opened) await b.close().catch(() => undefined);
    });

    it('answers its health check', async () => {
      expect(await bus.check()).toMatchObject({ ok: true });
    });

    it('delivers a published message with its envelope intact', async () => {
      const stream = uniqueStream('intact');
      const received: Envelope[] = [];
      const sub = await bus.subscribe(
        stream,
        'g',
        async (d) => {
          if (d.envelope) received.push(d.envelope);
          await d.ack();
        },
        { concurrency: 1, consumerName: 'c1' },
      );
      const sent = createEnvelope({
        stream,
        data: { n: 1, text: 'héllo', nested: { list: [1, 2] } },
        source: 'conformance@1.0.0',
        key: 'k-1',
        tracking: {
          requestId: 'req-1',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'a=b',
        },
      });
      await bus.publish(stream, sent);
      await waitFor(() => received.length === 1, 'the message');
      expect(received[0]).toEqual(sent);
      await sub.stop();
    });

    it('gives every group every message (fan-out)', async () => {
      const stream = uniqueStream('fanout');
      const a = await collect(bus, stream, 'group-a', 'c1');
      const b = await collect(bus, stream, 'group-b', 'c1');
      for (let n = 0; n < 20; n++) await bus.publish(stream, envelope(stream, n));
      await waitFor(() => a.seen.length === 20 && b.seen.length === 20, 'both groups to get 20 messages');
      expect(new Set(a.seen.map((s) => s.n)).size).toBe(20);
      expect(new Set(b.seen.map((s) => s.n)).size).toBe(20);
      await a.subscription.stop();
      await b.subscription.stop();
    });

    it('shares the messages of a group between its consumers, each once (load balancing)', async () => {
      const stream = uniqueStream('balance');
      const other = await open();
      const slow = async (d: Delivery) => {
        await sleep(5);
        await d.ack();
      };
      const one = await collect(bus, stream, 'workers', 'c1', { concurrency: 2, handle: slow });
      const two = await collect(other, stream, 'workers', 'c2', { concurrency: 2, handle: slow });
      await sleep(200);
      for (let n = 0; n < 60; n++) await bus.publish(stream, envelope(stream, n));
      await waitFor(() => one.seen.length + two.seen.length >= 60, '60 deliveries');
      await sleep(300);
      const all = [...one.seen, ...two.seen].map((s) => s.n).sort((x, y) => x - y);
      expect(all).toEqual([...Array(60).keys()]);
      expect(one.seen.length).toBeGreaterThan(0);
      expect(two.seen.length).toBeGreaterThan(0);
      await one.subscription.stop();
      await two.subscription.stop();
    });

    it('delivers a message again after retry, counting the attempt', async () => {
      const stream = uniqueStream('retry');
      const c = await collect(bus, stream, 'g', 'c1', {
        handle: async (d) => (d.attempt < 3 ? d.retry(50) : d.ack()),
      });
      await bus.publish(stream, envelope(stream, 1));
      await waitFor(() => c.seen.length === 3, 'three attempts');
      expect(c.seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
      await sleep(300);
      expect(c.seen.length).toBe(3);
      await c.subscription.stop();
    });

    it('hands a message that was never settled to another consumer after the claim timeout', async () => {
      const stream = uniqueStream('claim');
      const crashed = await open();
      let taken = 0;
      // This consumer takes the message and never settles it, as a process killed mid-handler would.
      const stuck = await crashed.subscribe(
        stream,
        'g',
        async () => {
          taken++;
          await new Promise(() => undefined);
        },
        { concurrency: 1, consumerName: 'stuck' },
      );
      await bus.publish(stream, envelope(stream, 42));
      await waitFor(() => taken === 1, 'the stuck consumer to take the message');
      void stuck;
      const rescuer = await collect(bus, stream, 'g', 'rescuer');
      await waitFor(() => rescuer.seen.length === 1, 'the message to be claimed', options.claimTimeoutMs * 4 + 5_000);
      expect(rescuer.seen[0]?.n).toBe(42);
      expect(rescuer.seen[0]?.attempt).toBeGreaterThanOrEqual(2);
      await rescuer.subscription.stop();
    });

    it('keeps the order of messages with one key for a consumer of concurrency 1', async () => {
      const stream = uniqueStream('order');
      const c = await collect(bus, stream, 'g', 'c1', { concurrency: 1 });
      for (let n = 0; n < 50; n++) await bus.publish(stream, envelope(stream, n, 'same-key'));
      await waitFor(() => c.seen.length === 50, '50 messages');
      expect(c.seen.map((s) => s.n)).toEqual([...Array(50).keys()]);
      await c.subscription.stop();
    });

    it('never runs more handlers at once than the concurrency (backpressure)', async () => {
      const stream = uniqueStream('backpressure');
      let active = 0;
      let peak = 0;
      const c = await collect(bus, stream, 'g', 'c1', {
        concurrency: 3,
        handle: async (d) => {
          active++;
          peak = Math.max(peak, active);
          await sleep(20);
          active--;
          await d.ack();
        },
      });
      for (let n = 0; n < 30; n++) await bus.publish(stream, envelope(stream, n));
      await waitFor(() => c.seen.length === 30, '30 messages', 15_000);
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThan(1);
      await c.subscription.stop();
    });

    it('lets in-flight handlers finish on stop, and does not redeliver what they acked', async () => {
      const stream = uniqueStream('graceful');
      let finished = 0;
      const c = await collect(bus, stream, 'g', 'c1', {
        concurrency: 4,
        handle: async (d) => {
          // Long enough to be in flight at stop, short enough to stay within the claim timeout.
          await sleep(Math.min(300, options.claimTimeoutMs / 4));
          finished++;
          await d.ack();
        },
      });
      for (let n = 0; n < 4; n++) await bus.publish(stream, envelope(stream, n));
      await waitFor(() => c.seen.length === 4, 'four messages in hand');
      await c.subscription.stop();
      expect(finished).toBe(4);
      const again = await collect(bus, stream, 'g', 'c2');
      await sleep(options.claimTimeoutMs + 500);
      expect(again.seen).toEqual([]);
      await again.subscription.stop();
    });

    it('retries a failing handler with backoff, then dead-letters it with the error (consumer runner)', async () => {
      const name = uniqueStream('dlq');
      const stream = defineStream(name, Item);
      const counters = new CounterBook();
      let calls = 0;
      const consumer: ConsumerDef = {
        kind: 'consumer',
        name: `on ${name}`,
        stream,
        group: 'g',
        options: { maxAttempts: 3, backoffMs: 20 },
        handler: async () => undefined,
      };
      const dead: unknown[] = [];
      const deadSub = await bus.subscribe(
        `${name}.dlq`,
        'inspect',
        async (d) => {
          dead.push(d.envelope?.data);
          await d.ack();
        },
        { concurrency: 1, consumerName: 'inspector' },
      );
      const sub = await startConsumer(consumer, {
        bus,
        counters,
        consumerName: 'runner',
        handle: async () => {
          calls++;
          throw new Error('always fails');
        },
        onDeadLetter: () => undefined,
        onSettleError: () => undefined,
      });
      await bus.publish(name, envelope(name, 9));
      // The runner publishes the dead letter before it acks and counts it, so the letter can arrive first.
      await waitFor(() => dead.length === 1 && counters.of(name, 'g').deadLettered === 1, 'the dead letter', 15_000);
      expect(calls).toBe(3);
      expect(dead[0]).toMatchObject({
        stream: name,
        group: 'g',
        attempts: 3,
        error: { message: 'always fails' },
        original: { data: { n: 9 } },
      });
      expect(counters.of(name, 'g')).toMatchObject({ retried: 2, deadLettered: 1, acked: 0 });
      await sub.stop();
      await deadSub.stop();
    });

    it('dead-letters a message that does not match the stream schema, without calling the handler', async () => {
      const name = uniqueStream('invalid');
      const stream = defineStream(name, Item);
      let calls = 0;
      const dead: unknown[] = [];
      const deadSub = await bus.subscribe(
        `${name}.dlq`,
        'inspect',
        async (d) => {
          dead.push(d.envelope?.data);
          await d.ack();
        },
        { concurrency: 1, consumerName: 'inspector' },
      );
      const sub = await startConsumer(
        { kind: 'consumer', name: `on ${name}`, stream, group: 'g', options: {}, handler: async () => undefined },
        {
          bus,
          counters: new CounterBook(),
          consumerName: 'runner',
          handle: async () => {
            calls++;
          },
          onDeadLetter: () => undefined,
          onSettleError: () => undefined,
        },
      );
      await bus.publish(name, createEnvelope({ stream: name, data: { n: 'not a number' }, source: 'x@1.0.0' }));
      await waitFor(() => dead.length === 1, 'the dead letter');
      expect(calls).toBe(0);
      expect(dead[0]).toMatchObject({
        reason: expect.stringContaining('does not match'),
        error: { details: [{ path: '/n' }] },
      });
      await sub.stop();
      await deadSub.stop();
    });

    if (options.injectRaw) {
      const injectRaw = options.injectRaw;
      it('dead-letters a poison message (not an envelope) and keeps consuming', async () => {
        const name = uniqueStream('poison');
        const stream = defineStream(name, Item);
        const handled: number[] = [];
        const dead: unknown[] = [];
        const deadSub = await bus.subscribe(
          `${name}.dlq`,
          'inspect',
          async (d) => {
            dead.push(d.envelope?.data);
            await d.ack();
          },
          { concurrency: 1, consumerName: 'inspector' },
        );
        const sub = await startConsumer(
          { kind: 'consumer', name: `on ${name}`, stream, group: 'g', options: {}, handler: async () => undefined },
          {
            bus,
            counters: new CounterBook(),
            consumerName: 'runner',
            handle: async (_def, env) => {
              handled.push((env.data as { n: number }).n);
            },
            onDeadLetter: () => undefined,
            onSettleError: () => undefined,
          },
        );
        await injectRaw(name, '\u0000garbage{');
        await bus.publish(name, envelope(name, 5));
        await waitFor(() => dead.length === 1 && handled.length === 1, 'the dead letter and the good message');
        expect(handled).toEqual([5]);
        expect(dead[0]).toMatchObject({ reason: expect.stringContaining('undecodable'), original: null });
        await sub.stop();
        await deadSub.stop();
      });
    }

    it('reports the lag of a group', async () => {
      const stream = uniqueStream('lag');
      const c = await collect(bus, stream, 'g', 'c1', { handle: async () => undefined });
      await c.subscription.stop();
      for (let n = 0; n < 5; n++) await bus.publish(stream, envelope(stream, n));
      await sleep(100);
      const stats = await bus.stats(stream, 'g');
      expect(stats.lag).toBeGreaterThanOrEqual(5);
    });
  });
}
