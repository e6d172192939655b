import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Delivery } from '../../src/bus/bus.ts';
import { createEnvelope, type Envelope } from '../../src/bus/envelope.ts';
import { createRedisStreamsBus, RedisStreamsBus, redisRetryKey, redisStreamKey } from '../../src/bus/redis/index.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { GantryError } from '../../src/errors/gantry-error.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';
import { deleteKeysUnder } from '../support/redis-keys.ts';
import { startRedisBroker } from './brokers/redis.ts';

const server = process.env.GANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// Unique per run: every key this file writes starts with it, and afterAll deletes them all.
const prefix = `gantry-it-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
const CLAIM_TIMEOUT_MS = 1_000;
const busUrl = (options: Record<string, string | number> = {}): string => {
  const query = new URLSearchParams({ prefix, claimTimeoutMs: String(CLAIM_TIMEOUT_MS) });
  for (const [name, value] of Object.entries(options)) query.set(name, String(value));
  return `${server}?${query}`;
};

let admin: Redis;
const opened: Bus[] = [];

async function openBus(options: Record<string, string | number> = {}): Promise<Bus> {
  const bus = await resolveBus(busUrl(options), { instanceId: 'it-redis' });
  opened.push(bus);
  return bus;
}

beforeAll(async () => {
  admin = new Redis(server, { maxRetriesPerRequest: 1 });
  // Fails the whole file, rather than skipping it, when no server answers.
  expect(await admin.ping()).toBe('PONG');
});

afterAll(async () => {
  await Promise.allSettled(opened.map((bus) => bus.close()));
  await deleteKeysUnder(admin, prefix);
  admin.disconnect();
});

runBusConformance({
  name: 'redis',
  create: () => openBus(),
  claimTimeoutMs: CLAIM_TIMEOUT_MS,
  injectRaw: async (stream, body) => {
    await admin.xadd(redisStreamKey(prefix, stream), '*', 'body', body, 'producer', 'not-gantry');
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const unique = (label: string): string => `it.${label}.${randomBytes(4).toString('hex')}`;
const message = (stream: string, n: number): Envelope => createEnvelope({ stream, data: { n }, source: 'it@1.0.0' });
const numberOf = (delivery: Delivery): number => {
  if (delivery.envelope === null) throw new Error(`undecodable delivery: ${delivery.decodeError}`);
  return (delivery.envelope.data as { n: number }).n;
};

describe('redis bus', () => {
  it('is chosen by the redis:// scheme, and refuses an unknown option naming it', async () => {
    const bus = await openBus();
    expect(bus).toBeInstanceOf(RedisStreamsBus);
    expect(bus.kind).toBe('redis');
    const refused = await resolveBus(`${server}?claimTimeout=5`, { instanceId: 'x' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GantryError);
    expect(refused).toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
      message: expect.stringContaining("'claimTimeout'"),
    });
  });

  it('starts a new group at the end of the stream, and keeps the position of an existing one', async () => {
    const bus = await openBus();
    const stream = unique('position');
    await bus.publish(stream, message(stream, 0));
    const seen: number[] = [];
    const handle = async (d: Delivery) => {
      seen.push(numberOf(d));
      await d.ack();
    };
    const first = await bus.subscribe(stream, 'g', handle, { concurrency: 4, consumerName: 'c1' });
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 1, 'the message published after the first subscribe');
    await first.stop();
    // Published while the group has no subscriber: the group still owes it.
    await bus.publish(stream, message(stream, 2));
    const again = await bus.subscribe(stream, 'g', handle, { concurrency: 4, consumerName: 'c1' });
    await waitFor(() => seen.length === 2, 'the message published while away');
    await sleep(200);
    expect(seen).toEqual([1, 2]);
    await again.stop();
  });

  it('waits out a retry delay longer than the claim timeout, even with other consumers sweeping', async () => {
    const bus = await openBus();
    const other = await openBus();
    const stream = unique('long-retry');
    const seen: { attempt: number; at: number }[] = [];
    const handle = async (d: Delivery) => {
      seen.push({ attempt: d.attempt, at: Date.now() });
      if (d.attempt === 1) await d.retry(CLAIM_TIMEOUT_MS * 2.5);
      else await d.ack();
    };
    const one = await bus.subscribe(stream, 'g', handle, { concurrency: 4, consumerName: 'c1' });
    const two = await other.subscribe(stream, 'g', handle, { concurrency: 4, consumerName: 'c2' });
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 2, 'the retried delivery', CLAIM_TIMEOUT_MS * 8);
    await sleep(CLAIM_TIMEOUT_MS * 2);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    const [first, second] = seen.map((s) => s.at) as [number, number];
    expect(second - first).toBeGreaterThanOrEqual(CLAIM_TIMEOUT_MS * 2.5 - 20);
    expect(await admin.zcard(redisRetryKey(prefix, stream, 'g'))).toBe(0);
    await one.stop();
    await two.stop();
  });

  it('redelivers a short retry on time, though its subscription is blocked reading', async () => {
    // Reads block up to 5 s (no sweep is due sooner): only ending the blocked read early gets the retry out on time.
    const bus = await openBus({ blockMs: 5_000, claimTimeoutMs: 30_000 });
    const stream = unique('short-retry');
    const seen: { attempt: number; at: number }[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push({ attempt: d.attempt, at: Date.now() });
        if (d.attempt === 1) await d.retry(300);
        else await d.ack();
      },
      { concurrency: 8, consumerName: 'c1' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 2, 'the retried delivery');
    const [first, second] = seen.map((s) => s.at) as [number, number];
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(second - first).toBeGreaterThanOrEqual(300 - 20);
    expect(second - first).toBeLessThan(1_500);
    await sub.stop();
  });

  it('hands the scheduled retry of a stopped consumer to the rest of the group', async () => {
    const bus = await openBus();
    const stream = unique('retry-handover');
    const seen: { attempt: number; consumer: string }[] = [];
    const leaving = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push({ attempt: d.attempt, consumer: 'leaving' });
        await d.retry(300);
      },
      { concurrency: 1, consumerName: 'leaving' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 1, 'the first delivery');
    await leaving.stop();
    const staying = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push({ attempt: d.attempt, consumer: 'staying' });
        await d.ack();
      },
      { concurrency: 1, consumerName: 'staying' },
    );
    await waitFor(() => seen.length === 2, 'the retry, taken by the other consumer', CLAIM_TIMEOUT_MS * 6);
    expect(seen).toEqual([
      { attempt: 1, consumer: 'leaving' },
      { attempt: 2, consumer: 'staying' },
    ]);
    await staying.stop();
  });

  it('caps the stream near maxLen', async () => {
    const bus = await openBus({ maxLen: 100 });
    const stream = unique('maxlen');
    await Promise.all(Array.from({ length: 1_000 }, (_, n) => bus.publish(stream, message(stream, n))));
    const length = await admin.xlen(redisStreamKey(prefix, stream));
    // Trimming with `~` drops whole internal nodes (100 entries each by default), so a little more than 100 remain.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(400);
  });

  it('creates its group again when the stream is deleted under it, and goes on consuming', async () => {
    const bus = await openBus();
    const stream = unique('deleted');
    const seen: number[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push(numberOf(d));
        await d.ack();
      },
      { concurrency: 4, consumerName: 'c1' },
    );
    await bus.publish(stream, message(stream, 1));
    await waitFor(() => seen.length === 1, 'the first message');
    await admin.del(redisStreamKey(prefix, stream));
    // Written to a stream that has no group any more: the subscription must find it once it has made the group again.
    await bus.publish(stream, message(stream, 2));
    await waitFor(() => seen.length === 2, 'the message published after the deletion', 10_000);
    expect(seen).toEqual([1, 2]);
    await sub.stop();
  });

  it('removes a stopped consumer that holds nothing from the group', async () => {
    const bus = await openBus();
    const stream = unique('release');
    const sub = await bus.subscribe(stream, 'g', async (d) => d.ack(), { concurrency: 2, consumerName: 'short-lived' });
    await bus.publish(stream, message(stream, 1));
    await waitFor(async () => (await bus.stats(stream, 'g')).lag === 0, 'the message to be acked');
    await sub.stop();
    const consumers = (await admin.xinfo('CONSUMERS', redisStreamKey(prefix, stream), 'g')) as unknown[];
    expect(consumers).toEqual([]);
  });
});

describe('redis bus under an ACL user that may not use CLIENT ID or CLIENT UNBLOCK', () => {
  it('still retries, and stops once its blocked read ends', async () => {
    const broker = await startRedisBroker();
    const root = new Redis(broker.url, { maxRetriesPerRequest: 1 });
    try {
      await root.call('ACL', 'SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all', '-client|unblock', '-client|id');
      const url = new URL(broker.url);
      url.username = 'app';
      url.password = 'secret';
      url.search = '?claimTimeoutMs=30000&blockMs=500';
      const bus = await createRedisStreamsBus(url, { instanceId: 'it-acl' });
      const stream = unique('acl');
      const seen: number[] = [];
      const sub = await bus.subscribe(
        stream,
        'g',
        async (d) => {
          seen.push(d.attempt);
          if (d.attempt === 1) await d.retry(100);
          else await d.ack();
        },
        { concurrency: 4, consumerName: 'c1' },
      );
      await bus.publish(stream, message(stream, 1));
      await waitFor(() => seen.length === 2, 'the retried delivery');
      expect(seen).toEqual([1, 2]);
      const stopping = Date.now();
      await sub.stop();
      expect(Date.now() - stopping).toBeLessThan(2_000);
      await bus.close();
    } finally {
      root.disconnect();
      await broker.remove();
    }
  });
});

describe('redis bus across a broker restart', () => {
  it('handles every one of 2,000 messages when the broker stops and starts mid-way', async () => {
    const broker = await startRedisBroker();
    try {
      const bus = await createRedisStreamsBus(
        new URL(`${broker.url}?claimTimeoutMs=2000&commandTimeoutMs=1000&blockMs=500`),
        {
          instanceId: 'it-restart',
        },
      );
      const stream = unique('restart');
      const handled = new Set<number>();
      let deliveries = 0;
      const sub = await bus.subscribe(
        stream,
        'g',
        async (d) => {
          deliveries++;
          handled.add(numberOf(d));
          // An ack lost in the outage leaves the message pending: it is claimed again after the claim timeout.
          await d.ack();
        },
        { concurrency: 50, consumerName: 'c1' },
      );
      const total = 2_000;
      let failures = 0;
      let restart: Promise<void> | undefined;
      for (let n = 0; n < total; n++) {
        if (n === 700) {
          restart = (async () => {
            await broker.stop();
            await sleep(2_000);
            await broker.start();
          })();
        }
        // The adapter fails a publish it could not place within commandTimeoutMs, with a retryable code: try again.
        for (;;) {
          try {
            await bus.publish(stream, message(stream, n));
            break;
          } catch (error) {
            expect(error).toMatchObject({ code: 'GANTRY_ERR_BUS_UNAVAILABLE', retryable: true });
            failures++;
            await sleep(100);
          }
        }
      }
      await restart;
      await waitFor(() => handled.size === total, `all ${total} messages handled`, 60_000);
      expect(failures).toBeGreaterThan(0);
      expect(deliveries).toBeGreaterThanOrEqual(total);
      expect(await bus.check()).toEqual({ ok: true });
      await sub.stop();
      await bus.close();
    } finally {
      await broker.remove();
    }
  });
});
