import { performance } from 'node:perf_hooks';
import type { Admin, Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Delivery, Subscription } from '../../src/bus/bus.ts';
import { createEnvelope } from '../../src/bus/envelope.ts';
import {
  ATTEMPT_HEADER,
  consumerGroupId,
  createKafkaBus,
  KafkaBus,
  NOT_BEFORE_HEADER,
  parseKafkaUrl,
  retryTopic,
} from '../../src/bus/kafka/index.ts';
import { resolveBus } from '../../src/bus/resolve.ts';
import { waitFor } from '../../src/testing/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';
import { headersOf, kafkaUrl, rawAdmin, rawProducer, readTopic, uniqueName, withOptions } from './kafka-env.ts';

// Run with KAFKA_URL set (see kafka-env.ts); without it every test of this file fails, naming the variable.
const CLAIM_TIMEOUT_MS = 1_500;

const topics = new Set<string>();
const groups = new Set<string>();
const opened: KafkaBus[] = [];
let admin: Admin | undefined;
let producer: Producer | undefined;

/** Opens a bus on the broker under test; every stream and group it touches is recorded for the cleanup. */
async function openBus(options = ''): Promise<Bus> {
  const bus = await createKafkaBus(
    withOptions(kafkaUrl(), `claimTimeoutMs=${CLAIM_TIMEOUT_MS}${options === '' ? '' : `&${options}`}`),
    {
      instanceId: 'gantry-kafka-it',
    },
  );
  opened.push(bus);
  return {
    kind: bus.kind,
    embedded: bus.embedded,
    publish: (stream, envelope) => {
      topics.add(stream);
      return bus.publish(stream, envelope);
    },
    subscribe: (stream, group, onDelivery, subscribeOptions) => {
      topics.add(stream).add(retryTopic(stream, group));
      groups.add(consumerGroupId(stream, group));
      return bus.subscribe(stream, group, onDelivery, subscribeOptions);
    },
    stats: (stream, group) => bus.stats(stream, group),
    check: () => bus.check(),
    close: () => bus.close(),
  };
}

beforeAll(async () => {
  admin = rawAdmin();
  producer = rawProducer();
  // Fails the whole file, rather than skipping it, when no broker answers.
  await admin.metadata({ topics: [] });
});

afterAll(async () => {
  await Promise.allSettled(opened.map((bus) => bus.close()));
  if (admin) {
    const existing = new Set(await admin.listTopics().catch(() => [] as string[]));
    const ours = [...topics, ...[...topics].map((t) => `${t}.dlq`)].filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
    if (groups.size > 0) await admin.deleteGroups({ groups: [...groups] }).catch(() => undefined);
    await admin.close();
  }
  await producer?.close();
});

runBusConformance({
  name: 'kafka',
  create: () => openBus(),
  claimTimeoutMs: CLAIM_TIMEOUT_MS,
  injectRaw: async (stream, body) => {
    // A foreign producer: no headers, no key, bytes that are not an envelope.
    await (producer as Producer).send({ messages: [{ topic: stream, value: Buffer.from(body) }] });
  },
});

describe('kafka bus specifics', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('is what resolveBus opens for a kafka:// URL', async () => {
    const [first] = parseKafkaUrl(kafkaUrl()).brokers;
    const host = first?.host.includes(':') ? `[${first.host}]` : first?.host;
    const bus = await resolveBus(`kafka://${host}:${first?.port}`, { instanceId: 'gantry-kafka-it' });
    try {
      expect(bus).toBeInstanceOf(KafkaBus);
      expect(await bus.check()).toEqual({ ok: true });
    } finally {
      await bus.close();
    }
  });

  it('creates a stream topic with the partitions asked for', async () => {
    const bus = await openBus('partitions=3');
    const stream = uniqueName('partitions');
    await bus.publish(stream, createEnvelope({ stream, data: { n: 1 }, source: 'it@1.0.0' }));
    const metadata = await (admin as Admin).metadata({ topics: [stream], forceUpdate: true });
    expect(metadata.topics.get(stream)?.partitionsCount).toBe(3);
  });

  it('writes CloudEvents binary mode: ce_ headers, data as the value, subject as the key', async () => {
    const bus = await openBus();
    const stream = uniqueName('wire');
    const sent = createEnvelope({ stream, data: { n: 1, text: 'héllo' }, source: 'it@1.0.0', key: 'customer-7' });
    await bus.publish(stream, sent);
    const [record] = await readTopic(stream, 1);
    const headers = headersOf(record as NonNullable<typeof record>);
    expect(record?.key?.toString('utf8')).toBe('customer-7');
    expect(JSON.parse(record?.value?.toString('utf8') ?? '')).toEqual({ n: 1, text: 'héllo' });
    expect(headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: sent.id,
      ce_source: 'it@1.0.0',
      ce_type: stream,
      ce_subject: 'customer-7',
      'content-type': 'application/json',
    });
  });

  it('keeps one key on one partition', async () => {
    const bus = await openBus();
    const stream = uniqueName('keys');
    for (let n = 0; n < 10; n++)
      await bus.publish(stream, createEnvelope({ stream, data: { n }, source: 'it@1.0.0', key: 'same' }));
    const records = await readTopic(stream, 10);
    expect(new Set(records.map((r) => r.partition)).size).toBe(1);
    expect(records.map((r) => JSON.parse(r.value.toString('utf8')).n)).toEqual([...Array(10).keys()]);
  });

  it('retries through <stream>.retry.<group> with attempt and not-before headers, never before the delay', async () => {
    const bus = await openBus();
    const stream = uniqueName('retry');
    const seen: { attempt: number; at: number }[] = [];
    const sub = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        seen.push({ attempt: d.attempt, at: performance.now() });
        await (d.attempt === 1 ? d.retry(800) : d.ack());
      },
      { concurrency: 4, consumerName: 'c1' },
    );
    const before = Date.now();
    await bus.publish(stream, createEnvelope({ stream, data: { n: 1 }, source: 'it@1.0.0' }));
    await waitFor(() => seen.length === 2, 'the retried delivery', 15_000);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(800);
    const [retried] = await readTopic(retryTopic(stream, 'g'), 1);
    const headers = headersOf(retried as NonNullable<typeof retried>);
    expect(headers[ATTEMPT_HEADER]).toBe('2');
    expect(Number(headers[NOT_BEFORE_HEADER])).toBeGreaterThanOrEqual(before + 800);
    expect(headers.ce_type).toBe(stream);
    await sub.stop();
  });

  it('commits a partition only up to its first unsettled message', async () => {
    const bus = await openBus('partitions=1');
    const stream = uniqueName('commit');
    const held: Delivery[] = [];
    const sub: Subscription = await bus.subscribe(
      stream,
      'g',
      async (d) => {
        const n = (d.envelope?.data as { n: number } | undefined)?.n;
        if (n === 0) held.push(d);
        else await d.ack();
      },
      { concurrency: 4, consumerName: 'c1' },
    );
    for (let n = 0; n < 3; n++) await bus.publish(stream, createEnvelope({ stream, data: { n }, source: 'it@1.0.0' }));
    await waitFor(() => held.length === 1, 'the first message in hand');
    await sleep(1_000);
    const committed = async (): Promise<bigint | undefined> => {
      const listed = await (admin as Admin).listConsumerGroupOffsets({
        groups: [{ groupId: consumerGroupId(stream, 'g'), topics: [{ name: stream, partitionIndexes: [0] }] }],
      });
      return listed[0]?.topics[0]?.partitions[0]?.committedOffset;
    };
    // Messages 1 and 2 are acked, but 0 is not: the group's offset must stay at 0.
    expect(await committed()).toBe(0n);
    expect((await bus.stats(stream, 'g')).lag).toBe(3);
    await held[0]?.ack();
    await waitFor(async () => (await committed()) === 3n, 'the commit past all three');
    expect((await bus.stats(stream, 'g')).lag).toBe(0);
    await sub.stop();
  });

  it('rejects names Kafka cannot hold as a topic, with a clear error', async () => {
    const bus = await openBus();
    await expect(
      bus.publish('bad/name', createEnvelope({ stream: 'bad/name', data: 1, source: 'it@1.0.0' })),
    ).rejects.toThrow(/not a valid Kafka topic name/);
  });
});
