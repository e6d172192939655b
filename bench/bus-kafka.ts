// The Kafka bus against raw @platformatic/kafka doing the same acknowledged work: produce, consume in a group, commit.
// Needs a broker: `npx tsx bench/bus-kafka.ts [messages] kafka://host:9092` (or KAFKA_URL); nothing runs without one.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import { consumerGroupId, createKafkaBus, parseKafkaUrl, retryTopic } from '../src/bus/kafka/index.ts';
import { benchData, type Figures, figures, measureAdapter } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Messages published per batch, by both sides: one `send` of that many records (raw), or that many concurrent publishes. */
const PUBLISH_BATCH = 500;
/** Partitions of every topic of the run, the adapter's default. */
const PARTITIONS = 6;
/** Measured rounds of each side; each side keeps its best. */
const ROUNDS = 3;

/**
 * Measures `messages` messages going publish → consume → commit twice in one run against the broker at `url`: raw
 * @platformatic/kafka as an expert would write it (batched sends with acks = all, one consumer stream, one commit in
 * flight carrying the highest offset of every partition), then the Gantry adapter through the `Bus` interface
 * (publish, subscribe with concurrency 100, ack). Producer and consumer share the process; latency is from the publish
 * time stamped in the body to the handler. Topics and groups are unique to the run and deleted after it.
 */
export async function benchKafka(options: { messages: number; url: string }): Promise<BusBenchRow[]> {
  const run = `gantry-bench.${randomBytes(4).toString('hex')}`;
  const connection = { clientId: 'gantry-bench', bootstrapBrokers: parseKafkaUrl(options.url).brokers };
  const admin = new Admin(connection);
  const topics: string[] = [];
  const groups: string[] = [];
  try {
    // A short unrecorded run of each side first, so neither pays for JIT warm-up or first connections in the figures.
    const warmup = Math.min(2_000, options.messages);
    await rawRun(admin, connection, `${run}.warm-raw`, warmup, topics, groups);
    await adapterRun(options.url, `${run}.warm-adapter`, warmup, topics, groups);
    let raw: Figures | undefined;
    let adapter: Figures | undefined;
    // Rounds alternate the sides so a burst of load elsewhere on the machine lands on one round of one side.
    for (let round = 0; round < ROUNDS; round++) {
      raw = best(raw, await rawRun(admin, connection, `${run}.raw-${round}`, options.messages, topics, groups));
      adapter = best(
        adapter,
        await adapterRun(options.url, `${run}.adapter-${round}`, options.messages, topics, groups),
      );
    }
    return [
      { name: 'raw platformatic', ...(raw as Figures) },
      { name: 'gantry kafka', ...(adapter as Figures) },
    ];
  } finally {
    const existing = new Set(await admin.listTopics().catch(() => [] as string[]));
    const ours = topics.filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours }).catch(() => undefined);
    if (groups.length > 0) await admin.deleteGroups({ groups }).catch(() => undefined);
    await admin.close();
  }
}

async function rawRun(
  admin: Admin,
  connection: { clientId: string; bootstrapBrokers: { host: string; port: number }[] },
  topic: string,
  messages: number,
  topics: string[],
  groups: string[],
): Promise<Figures> {
  topics.push(topic);
  const groupId = `${topic}:bench`;
  groups.push(groupId);
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: -1 });
  await waitForLeaders(admin, topic);
  const producer = new Producer({ ...connection, autocreateTopics: false });
  const consumer = new Consumer({ ...connection, groupId, autocommit: false, maxWaitTime: 500 });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });

  const latencies: number[] = [];
  // One commit in flight; what settles meanwhile rides on the next one, as the adapter does.
  const highest = new Map<number, bigint>();
  let committing: Promise<void> | undefined;
  let dirty = false;
  const commit = (): void => {
    if (committing) {
      dirty = true;
      return;
    }
    dirty = false;
    const offsets = [...highest].map(([partition, offset]) => ({
      topic,
      partition,
      offset: offset + 1n,
      leaderEpoch: -1,
    }));
    committing = consumer.commit({ offsets }).finally(() => {
      committing = undefined;
      if (dirty) commit();
    });
  };
  const done = new Promise<void>((resolve) => {
    stream.on('data', (message) => {
      const body = JSON.parse(message.value.toString('utf8')) as { t: number };
      latencies.push(performance.now() - body.t);
      highest.set(message.partition, message.offset);
      commit();
      if (latencies.length === messages) resolve();
    });
  });

  const started = performance.now();
  for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
    const batch = [];
    for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
      batch.push({ topic, value: Buffer.from(JSON.stringify(benchData(n, performance.now()))) });
    }
    await producer.send({ messages: batch, acks: -1 });
  }
  await done;
  while (committing) await committing;
  const elapsed = performance.now() - started;
  await stream.close();
  await consumer.close(true);
  await producer.close();
  return figures(messages, elapsed, latencies);
}

async function adapterRun(
  url: string,
  stream: string,
  messages: number,
  topics: string[],
  groups: string[],
): Promise<Figures> {
  topics.push(stream, retryTopic(stream, 'bench'));
  groups.push(consumerGroupId(stream, 'bench'));
  const bus = await createKafkaBus(url, { instanceId: 'gantry-bench' });
  return measureAdapter(bus, stream, messages);
}

async function waitForLeaders(admin: Admin, topic: string): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
    const found = metadata?.topics.get(topic);
    if (found?.partitions.every((p) => p.leader >= 0)) return;
    if (Date.now() > until) throw new Error(`topic ${topic} has no leaders after 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function best(kept: Figures | undefined, next: Figures): Figures {
  return kept === undefined || next.msgsPerSec > kept.msgsPerSec ? next : kept;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const messages = Number(process.argv[2] ?? 20_000);
  const url = process.argv[3] ?? process.env.KAFKA_URL;
  if (url === undefined || url === '') {
    console.error(
      'bench/bus-kafka.ts needs a broker: npx tsx bench/bus-kafka.ts [messages] kafka://host:9092 (or KAFKA_URL)',
    );
    process.exit(2);
  }
  const rows = await benchKafka({ messages, url });
  const base = rows[0] as BusBenchRow;
  for (const row of rows) {
    const ratio = (row.msgsPerSec / base.msgsPerSec).toFixed(2);
    console.log(
      `${row.name.padEnd(18)}${row.msgsPerSec.toFixed(0).padStart(9)} msg/s  p99 ${row.p99Ms.toFixed(1).padStart(7)} ms  ratio ${ratio}`,
    );
  }
}
