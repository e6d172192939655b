import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Subscription } from '../../src/bus/bus.ts';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { natsNames, parseNatsUrl } from '../../src/bus/nats/index.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { GantryError } from '../../src/errors/gantry-error.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';
import { type NatsBroker, startNatsBroker } from './brokers/nats.ts';

const server = process.env.GANTRY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
// A prefix of this run's own: its subjects and JetStream streams never meet another run's, and cleanup finds them.
const prefix = `it${randomBytes(4).toString('hex')}`;
const claimTimeoutMs = 1_000;
const busUrl = `${server}?prefix=${prefix}&claimTimeoutMs=${claimTimeoutMs}`;

let admin: NatsConnection;

beforeAll(async () => {
  admin = await connect({ servers: parseNatsUrl(new URL(server), 'it-admin').servers });
});

afterAll(async () => {
  await deleteStreams(admin, `${prefix.toUpperCase()}_`);
  await admin.close();
});

/** Deletes the JetStream streams whose names start with `start`: those this run created. */
async function deleteStreams(nc: NatsConnection, start: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const name of jsm.streams.names()) if (name.startsWith(start)) names.push(name);
  for (const name of names) await jsm.streams.delete(name);
}

runBusConformance({
  name: 'nats',
  create: () => resolveBus(busUrl, { instanceId: 'conformance' }),
  claimTimeoutMs,
  // A foreign producer: a plain JetStream publish on the stream's subject, no ce- headers, a body that is not JSON.
  injectRaw: async (stream, body) => {
    await jetstream(admin).publish(natsNames(prefix, stream).subject, body);
  },
});

describe('nats bus: URL and names', () => {
  it('refuses an unknown option or a bad value with a coded error', async () => {
    await expect(resolveBus(`${server}?claimTimeout=5`, { instanceId: 'x' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_CONFIG_INVALID',
    });
    await expect(resolveBus(`${server}?claimTimeoutMs=soon`, { instanceId: 'x' })).rejects.toBeInstanceOf(GantryError);
  });

  it('fails to open with a clear error when no server listens', async () => {
    await expect(resolveBus('nats://127.0.0.1:1', { instanceId: 'x' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_BUS_UNAVAILABLE',
      message: expect.stringContaining('127.0.0.1:1'),
    });
  });

  it('keeps the group lag as consumer info tells it, and refuses use after close', async () => {
    const bus = await resolveBus(busUrl, { instanceId: 'lag' });
    const stream = `it.lag.${randomBytes(4).toString('hex')}`;
    const sub = await bus.subscribe(stream, 'g', async () => undefined, { concurrency: 1, consumerName: 'c' });
    await sub.stop();
    for (let n = 0; n < 3; n++) await bus.publish(stream, createEnvelope({ stream, data: { n }, source: 'it@1' }));
    expect(await bus.stats(stream, 'g')).toEqual({ stream, group: 'g', lag: 3 });
    expect(await bus.stats(stream, 'never-subscribed')).toEqual({ stream, group: 'never-subscribed', lag: 0 });
    await bus.close();
    expect(await bus.check()).toEqual({ ok: false, detail: 'closed' });
    await expect(bus.publish(stream, createEnvelope({ stream, data: {}, source: 'it@1' }))).rejects.toMatchObject({
      code: 'GANTRY_ERR_BUS_CLOSED',
    });
  });
});

describe('nats bus: broker restart', () => {
  let broker: NatsBroker;

  beforeAll(async () => {
    broker = await startNatsBroker();
  });

  afterAll(async () => {
    await broker.remove();
  });

  it('loses no message when the broker stops and starts again mid-way, reconnecting by itself', async () => {
    const total = 2_000;
    const stream = `it.restart.${randomBytes(4).toString('hex')}`;
    // publishTimeoutMs covers the outage: publish retries through it by itself, so this test never retries.
    const url = `${broker.url}?prefix=${prefix}&claimTimeoutMs=2000&publishTimeoutMs=60000`;
    const producer: Bus = await resolveBus(url, { instanceId: 'producer' });
    const consumer: Bus = await resolveBus(url, { instanceId: 'consumer' });
    const handled = new Set<number>();
    let deliveries = 0;
    const sub: Subscription = await consumer.subscribe(
      stream,
      'g',
      async (d) => {
        deliveries++;
        // An undecodable message would never be acked here, so the wait below would fail.
        if (d.envelope === null) return;
        handled.add((d.envelope.data as { n: number }).n);
        await d.ack();
      },
      { concurrency: 20, consumerName: 'c1' },
    );

    let restart: Promise<void> | undefined;
    const window = 50;
    for (let from = 0; from < total; from += window) {
      if (from === total / 2) {
        // Stop the broker with publishes in flight and start it again a second later, without waiting for it here.
        restart = (async () => {
          await broker.stop();
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          await broker.start();
        })();
      }
      const batch: Promise<void>[] = [];
      for (let n = from; n < Math.min(total, from + window); n++) {
        batch.push(producer.publish(stream, createEnvelope({ stream, data: { n }, source: 'it@1' })));
      }
      await Promise.all(batch);
    }
    await restart;
    await waitFor(() => handled.size === total, `all ${total} messages handled`, 60_000);
    expect(deliveries).toBeGreaterThanOrEqual(total);
    expect(await consumer.check()).toMatchObject({ ok: true });
    await sub.stop();
    await producer.close();
    await consumer.close();
  });
});
