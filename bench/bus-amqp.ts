// The RabbitMQ bus against raw amqplib doing the same acknowledged work: publish with confirms, consume, ack.
// Run alone with `npx tsx bench/bus-amqp.ts [messages] [url]`; it adds the raw-with-envelope reference row.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { type ChannelModel, connect, type Options } from 'amqplib';
import { openAmqpBus } from '../src/bus/amqp/index.ts';
import { decodeMessage, encodeMessage } from '../src/bus/codec.ts';
import { createEnvelope } from '../src/bus/envelope.ts';
import { benchData, type Figures, figures, measureAdapter, median } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Messages published per batch, by both sides: that many publishes in flight on the confirm channel. */
const PUBLISH_BATCH = 500;
/** Unacked messages the broker may push to the consumer, on both sides (the adapter's concurrency 100). */
const PREFETCH = 100;
/** Measured rounds of each side. */
const ROUNDS = 3;

/**
 * Measures `messages` messages going publish → consume → ack twice in one run against the broker at `url`: raw
 * amqplib as an expert would write it (a confirm channel with persistent messages published in batches, waiting for
 * 'drain' when the socket buffer fills; a consumer channel with prefetch 100 and a manual ack per message), then the
 * Gantry adapter through the `Bus` interface (publish, subscribe with concurrency 100, ack). Both use the same
 * topology, a topic exchange and a durable quorum queue, so the broker does the same work. Producer and consumer share
 * the process; latency is from the publish time stamped in the body to the handler. Each side runs three times,
 * alternating, and reports its median run.
 *
 * @example
 * const [raw, adapter] = await benchAmqp({ messages: 20_000, url: 'amqp://guest:guest@127.0.0.1:5672' });
 */
export async function benchAmqp(options: {
  messages: number;
  url: string;
  /**
   * Adds a third row: raw amqplib moving the adapter's wire format (a CloudEvents envelope in headers, encoded and
   * decoded with `src/bus/codec.ts`), which tells the cost of the envelope from the cost of the adapter.
   */
  envelopeReference?: boolean;
}): Promise<BusBenchRow[]> {
  const exchange = `gantry-bench-${randomBytes(4).toString('hex')}`;
  // TCP_NODELAY, as the adapter sets it: without it every publish waits on Nagle's algorithm (see AMQP_NO_DELAY).
  const admin = await connect(options.url, { noDelay: true });
  const queues: string[] = [];
  try {
    // A short unrecorded run of each side first, so neither pays for JIT warm-up or queue creation in the figures.
    const warmup = Math.min(2_000, options.messages);
    await rawRun(admin, exchange, 'warm-raw', warmup, queues, false);
    await adapterRun(options.url, exchange, 'warm-adapter', warmup, queues);
    // Rounds alternate the two sides and each side reports its median round, so a burst of load from elsewhere on
    // the machine (the broker shares its cores) does not decide the ratio.
    const raw: Figures[] = [];
    const adapter: Figures[] = [];
    const reference: Figures[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      raw.push(await rawRun(admin, exchange, `raw-${round}`, options.messages, queues, false));
      adapter.push(await adapterRun(options.url, exchange, `adapter-${round}`, options.messages, queues));
      if (options.envelopeReference) {
        reference.push(await rawRun(admin, exchange, `envelope-${round}`, options.messages, queues, true));
      }
    }
    const rows: BusBenchRow[] = [
      { name: 'raw amqplib', ...median(raw) },
      { name: 'gantry amqp', ...median(adapter) },
    ];
    if (options.envelopeReference) rows.push({ name: 'raw + envelope', ...median(reference) });
    return rows;
  } finally {
    const channel = await admin.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    await channel.deleteQueue(`${exchange}:dead-letter`);
    await channel.deleteExchange(`${exchange}:dead-letter`);
    await channel.deleteExchange(exchange);
    await admin.close();
  }
}

async function rawRun(
  model: ChannelModel,
  exchange: string,
  stream: string,
  messages: number,
  queues: string[],
  envelope: boolean,
): Promise<Figures> {
  const queue = `${exchange}:${stream}:raw`;
  queues.push(queue);
  const producer = await model.createConfirmChannel();
  const consumer = await model.createChannel();
  await producer.assertExchange(exchange, 'topic', { durable: true });
  await producer.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await producer.bindQueue(queue, exchange, stream);
  await consumer.prefetch(PREFETCH);
  const latencies: number[] = [];
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const { consumerTag } = await consumer.consume(
    queue,
    (message) => {
      if (message === null) return;
      const text = message.content.toString();
      if (envelope) {
        const decoded = decodeMessage(message.properties.headers as Record<string, string>, text);
        latencies.push(performance.now() - (decoded.ok ? (decoded.envelope.data as { t: number }).t : 0));
      } else {
        latencies.push(performance.now() - (JSON.parse(text) as { t: number }).t);
      }
      consumer.ack(message);
      if (latencies.length === messages) finished();
    },
    { noAck: false },
  );
  const started = performance.now();
  for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
    const confirms: Promise<void>[] = [];
    for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
      let content: Buffer;
      let properties: Options.Publish = { persistent: true, contentType: 'application/json' };
      if (envelope) {
        const sent = createEnvelope({ stream, data: benchData(n, performance.now()), source: 'bench@1.0.0' });
        const { headers, body } = encodeMessage(sent);
        const { 'content-type': contentType, ...attributes } = headers;
        content = Buffer.from(body);
        properties = { persistent: true, contentType, messageId: sent.id, headers: attributes };
      } else {
        content = Buffer.from(JSON.stringify(benchData(n, performance.now())));
      }
      let accepted = true;
      confirms.push(
        new Promise<void>((resolve, reject) => {
          accepted = producer.publish(exchange, stream, content, properties, (error: unknown) =>
            error ? reject(error) : resolve(),
          );
        }),
      );
      // Keep to the socket's pace rather than buffering the whole batch in memory.
      if (!accepted) await once(producer, 'drain');
    }
    await Promise.all(confirms);
  }
  await done;
  const elapsed = performance.now() - started;
  await consumer.cancel(consumerTag);
  await consumer.close();
  await producer.close();
  return figures(messages, elapsed, latencies);
}

async function adapterRun(
  url: string,
  exchange: string,
  stream: string,
  messages: number,
  queues: string[],
): Promise<Figures> {
  const bus = await openAmqpBus(new URL(`${url}/?exchange=${exchange}`), { instanceId: 'bench' });
  queues.push(bus.names.groupQueue(stream, 'bench'));
  return measureAdapter(bus, stream, messages, PREFETCH);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const messages = Number(process.argv[2] ?? 20_000);
  const url = process.argv[3] ?? 'amqp://guest:guest@127.0.0.1:5672';
  const rows = await benchAmqp({ messages, url, envelopeReference: true });
  const base = rows[0] as BusBenchRow;
  for (const row of rows) {
    const ratio = (row.msgsPerSec / base.msgsPerSec).toFixed(2);
    const rate = row.msgsPerSec.toFixed(0).padStart(9);
    console.log(`${row.name.padEnd(16)}${rate} msg/s  p99 ${row.p99Ms.toFixed(1).padStart(7)} ms  ratio ${ratio}`);
  }
}
