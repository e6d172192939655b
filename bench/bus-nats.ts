// The NATS JetStream bus against the raw JetStream client doing the same acknowledged work: publish, pull, ack.
// Run alone with `npx tsx bench/bus-nats.ts [messages] [url]`.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { openNatsJetStreamBus } from '../src/bus/nats/index.ts';
import { benchData, type Figures, figures, measureAdapter, median } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Publishes in flight at once, on both sides: each awaits its JetStream ack, the batch is awaited as a whole. */
const PUBLISH_BATCH = 500;
/** Messages per pull for the raw consumer, as many as the adapter's subscription of concurrency 100 holds. */
const PULL_BATCH = 100;
/** Measured rounds per side. */
const ROUNDS = 5;

/**
 * Measures `messages` messages going publish → consume → ack twice in one run against the server at `url`: the raw
 * JetStream client as an expert would write it (acked publishes, many in flight; a durable pull consumer with
 * `consume()` in batches of 100 and an ack per message), then the Gantry adapter through the `Bus` interface (publish,
 * subscribe with concurrency 100, ack). Both use file storage. Producer and consumer share the process; latency is
 * from the publish time stamped in the body to the handler. Each side runs five rounds, alternating, and reports
 * its median. The streams made for the run are deleted at the end.
 */
export async function benchNats(options: { messages: number; url: string }): Promise<BusBenchRow[]> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  // No async stack traces for requests, as the adapter sets: an expert tuning for throughput turns them off.
  const admin = await connect({ servers: new URL(options.url).host, noAsyncTraces: true });
  try {
    // A short unrecorded run of each side first, so neither pays for JIT warm-up in the figures.
    const warmup = Math.min(2_000, options.messages);
    await rawRun(admin, `${prefix}.warm-raw`, warmup);
    await adapterRun(options.url, prefix, 'warm-adapter', warmup);
    // Rounds alternate between the two sides and each side reports its median round, so a burst of load from
    // elsewhere on the machine (the server shares it) weighs on neither side alone.
    const raw: Figures[] = [];
    const adapter: Figures[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      raw.push(await rawRun(admin, `${prefix}.raw${round}`, options.messages));
      adapter.push(await adapterRun(options.url, prefix, `adapter${round}`, options.messages));
    }
    return [
      { name: 'raw jetstream', ...median(raw) },
      { name: 'gantry nats', ...median(adapter) },
    ];
  } finally {
    const jsm = await jetstreamManager(admin);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith(prefix.toUpperCase())) names.push(name);
    for (const name of names) await jsm.streams.delete(name);
    await admin.close();
  }
}

async function rawRun(nc: NatsConnection, subject: string, messages: number): Promise<Figures> {
  const stream = subject.toUpperCase().replace(/[.-]/g, '_');
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [subject] });
  await jsm.consumers.add(stream, {
    durable_name: 'bench',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    ack_wait: nanos(30_000),
  });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream, 'bench');
  const latencies: number[] = [];
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const pulling = await consumer.consume({
    max_messages: PULL_BATCH,
    callback: (msg) => {
      const body = msg.json<{ t: number }>();
      latencies.push(performance.now() - body.t);
      msg.ack();
      if (latencies.length === messages) finished();
    },
  });
  const started = performance.now();
  for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
    const batch: Promise<unknown>[] = [];
    for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
      batch.push(js.publish(subject, JSON.stringify(benchData(n, performance.now()))));
    }
    await Promise.all(batch);
  }
  await done;
  // The acks are on the wire once the flush returns, as the adapter's `stop()` makes sure of its own.
  await nc.flush();
  const elapsed = performance.now() - started;
  await pulling.close();
  return figures(messages, elapsed, latencies);
}

async function adapterRun(url: string, prefix: string, stream: string, messages: number): Promise<Figures> {
  const busUrl = new URL(url);
  busUrl.searchParams.set('prefix', prefix);
  const bus = await openNatsJetStreamBus(busUrl, { instanceId: 'bench' });
  return measureAdapter(bus, stream, messages);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const messages = Number(process.argv[2] ?? 20_000);
  const url = process.argv[3] ?? 'nats://127.0.0.1:4222';
  const rows = await benchNats({ messages, url });
  const base = rows[0] as BusBenchRow;
  for (const row of rows) {
    const ratio = (row.msgsPerSec / base.msgsPerSec).toFixed(2);
    console.log(
      `${row.name.padEnd(16)}${row.msgsPerSec.toFixed(0).padStart(9)} msg/s  p99 ${row.p99Ms.toFixed(1).padStart(7)} ms  ratio ${ratio}`,
    );
  }
}
