import { randomBytes } from 'node:crypto';
import { Admin, Consumer, type Message, Producer } from '@platformatic/kafka';
import { parseKafkaUrl } from '../../src/bus/kafka/index.ts';

/**
 * The broker under test: `KAFKA_URL`, e.g. `kafka://127.0.0.1:9092` (several brokers: `kafka://k1:9092,k2:9092`).
 * Throws a clear error when it is not set, so a run without a broker fails instead of passing on nothing.
 *
 * A broker for these tests should have `group.initial.rebalance.delay.ms=0` (the default, 3 s, delays every new
 * consumer group's first join) and may run with one replica (`offsets.topic.replication.factor=1`, and likewise for
 * the transaction state log).
 */
export function kafkaUrl(): string {
  const url = process.env.KAFKA_URL;
  if (url === undefined || url.trim() === '') {
    throw new Error(
      'KAFKA_URL is not set: these tests need a Kafka broker, e.g. KAFKA_URL=kafka://127.0.0.1:9092 npm run test:kafka',
    );
  }
  return url.trim();
}

/** `url` with more query options (`claimTimeoutMs=1500`). */
export function withOptions(url: string, options: string): string {
  if (options === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${options}`;
}

/** A name unique to this run, so parallel runs on one broker never meet; the tests delete what they create. */
export function uniqueName(label: string): string {
  return `kafka-it.${label}.${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

function connection(): { clientId: string; bootstrapBrokers: { host: string; port: number }[] } & Record<
  string,
  unknown
> {
  const options = parseKafkaUrl(kafkaUrl());
  return {
    clientId: 'gantry-kafka-tests',
    bootstrapBrokers: options.brokers,
    ...(options.tls ? { tls: {} } : {}),
    ...(options.sasl ? { sasl: options.sasl } : {}),
  };
}

/** Raw clients of the test itself: what a foreign producer or an operator's tool would see on the broker. */
export function rawAdmin(): Admin {
  return new Admin(connection());
}

export function rawProducer(): Producer {
  return new Producer({ ...connection(), autocreateTopics: false });
}

/** Reads `count` records of `topic` from the start, with a throwaway group, and closes the consumer. */
export async function readTopic(topic: string, count: number, timeoutMs = 15_000): Promise<Message[]> {
  const consumer = new Consumer({
    ...connection(),
    groupId: uniqueName('reader'),
    autocommit: false,
    maxWaitTime: 200,
  });
  const records: Message[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const until = Date.now() + timeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (Date.now() > until) {
          clearInterval(timer);
          reject(new Error(`read ${records.length} of ${count} records of ${topic} in ${timeoutMs} ms`));
        }
      }, 100);
      stream.on('data', (message) => {
        records.push(message);
        if (records.length >= count) {
          clearInterval(timer);
          resolve();
        }
      });
      stream.on('error', (error) => {
        clearInterval(timer);
        reject(error);
      });
    });
    await stream.close();
    return records;
  } finally {
    await consumer.close(true);
    const admin = rawAdmin();
    await admin.deleteGroups({ groups: [consumer.groupId] }).catch(() => undefined);
    await admin.close();
  }
}

/** Text of the headers of a raw record. */
export function headersOf(message: Message): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of message.headers) out[name.toString('utf8')] = value?.toString('utf8') ?? '';
  return out;
}
