import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.ts';
import { createEnvelope, type Envelope } from '../../src/bus/envelope.ts';
import { decodeRedisEntry, redisStreamKey } from '../../src/bus/redis/codec.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { freePort } from '../support/processes.ts';
import { deleteKeysUnder } from '../support/redis-keys.ts';

// The Redis bus's publish path (src/bus/redis/publisher.ts): the XADDs of a turn go out as one pipeline with one
// deadline, yet each publish settles on its own.
const server = process.env.GANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `gantry-it-pub-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
const unique = (label: string): string => `it.${label}.${randomBytes(4).toString('hex')}`;
const message = (stream: string, n: number): Envelope => createEnvelope({ stream, data: { n }, source: 'it@1.0.0' });

let admin: Redis;
const opened: Bus[] = [];

async function openBus(url: string): Promise<Bus> {
  const bus = await resolveBus(url, { instanceId: 'it-redis-publish' });
  opened.push(bus);
  return bus;
}

/** The `n` of every entry of a stream, in stream order. */
async function numbersIn(stream: string): Promise<number[]> {
  const entries = await admin.xrange(redisStreamKey(prefix, stream), '-', '+');
  return entries.map(([, fields]) => {
    const decoded = decodeRedisEntry(fields);
    if (!decoded.ok) throw new Error(decoded.error);
    return (decoded.envelope.data as { n: number }).n;
  });
}

beforeAll(async () => {
  admin = new Redis(server, { maxRetriesPerRequest: 1 });
  expect(await admin.ping()).toBe('PONG');
});

afterAll(async () => {
  await Promise.allSettled(opened.map((bus) => bus.close()));
  await deleteKeysUnder(admin, prefix);
  admin.disconnect();
});

describe('redis bus publish', () => {
  it('fails only the publish the server refuses among those sent together, and keeps the order of the rest', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const good = unique('good');
    const wrongType = unique('wrong-type');
    // A plain string at the stream's key: the server answers WRONGTYPE to that XADD alone.
    await admin.set(redisStreamKey(prefix, wrongType), 'not a stream');
    const results = await Promise.allSettled([
      bus.publish(good, message(good, 1)),
      bus.publish(wrongType, message(wrongType, 2)),
      bus.publish(good, message(good, 3)),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(results[1]).toMatchObject({
      status: 'rejected',
      reason: { code: 'GANTRY_ERR_INTERNAL', message: expect.stringContaining(`publish to '${wrongType}'`) },
    });
    expect(results[2]).toEqual({ status: 'fulfilled', value: undefined });
    expect(await numbersIn(good)).toEqual([1, 3]);
  });

  it('stores a burst larger than one pipeline in publish order', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const stream = unique('burst');
    const numbers = Array.from({ length: 2_500 }, (_, n) => n);
    await Promise.all(numbers.map((n) => bus.publish(stream, message(stream, n))));
    expect(await numbersIn(stream)).toEqual(numbers);
  });

  it('keeps the order of each stream when the publishes of a turn to two streams interleave', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const left = unique('left');
    const right = unique('right');
    await Promise.all(
      Array.from({ length: 300 }, (_, n) =>
        bus.publish(n % 2 === 0 ? left : right, message(n % 2 === 0 ? left : right, n)),
      ),
    );
    expect(await numbersIn(left)).toEqual(Array.from({ length: 150 }, (_, i) => 2 * i));
    expect(await numbersIn(right)).toEqual(Array.from({ length: 150 }, (_, i) => 2 * i + 1));
  });

  it('splits a turn of large messages into several writes, in publish order', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const stream = unique('large');
    // 400 KB each: three make more than one batch may hold (1 MiB of events).
    const large = (n: number): Envelope =>
      createEnvelope({ stream, data: { n, padding: 'x'.repeat(400_000) }, source: 'it@1.0.0' });
    await Promise.all([0, 1, 2, 3, 4].map((n) => bus.publish(stream, large(n))));
    expect(await numbersIn(stream)).toEqual([0, 1, 2, 3, 4]);
  });

  it('sends the publishes of the current turn before closing', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const stream = unique('close');
    // Connected first: close() waits for replies under way only on a ready connection.
    await bus.publish(stream, message(stream, 6));
    const published = bus.publish(stream, message(stream, 7));
    await bus.close();
    await expect(published).resolves.toBeUndefined();
    expect(await numbersIn(stream)).toEqual([6, 7]);
  });

  it('rejects data JSON cannot write, without throwing from publish itself', async () => {
    const bus = await openBus(`${server}?prefix=${encodeURIComponent(prefix)}`);
    const stream = unique('bigint');
    let published: Promise<void> | undefined;
    expect(() => {
      published = bus.publish(stream, createEnvelope({ stream, data: { n: 1n }, source: 'it@1.0.0' }));
    }).not.toThrow();
    await expect(published).rejects.toThrow(/BigInt/);
  });

  it('fails publishes that get no answer within commandTimeoutMs as retryable, turn after turn', async () => {
    // A free port: nothing listens there, so connections are refused and commands wait in the offline queue.
    const port = await freePort();
    const bus = await openBus(`redis://127.0.0.1:${port}?prefix=${encodeURIComponent(prefix)}&commandTimeoutMs=200`);
    const stream = unique('unreachable');
    const first = Promise.allSettled([
      bus.publish(stream, message(stream, 1)),
      bus.publish(stream, message(stream, 2)),
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    // A later turn's publish has a deadline of its own.
    const later = Promise.allSettled([bus.publish(stream, message(stream, 3))]);
    const unavailable = {
      status: 'rejected',
      reason: {
        code: 'GANTRY_ERR_BUS_UNAVAILABLE',
        retryable: true,
        message: expect.stringContaining('Command timed out'),
      },
    };
    expect(await first).toMatchObject([unavailable, unavailable]);
    expect(await later).toMatchObject([unavailable]);
  });
});
