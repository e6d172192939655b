import type { Admin, BaseOptions, Producer } from '@platformatic/kafka';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import type { Envelope } from '../envelope.ts';
import { encodeKafkaRecord } from './codec.ts';
import { type KafkaBusOptions, parseKafkaUrl } from './options.ts';
import { KafkaPublisher } from './producer.ts';
import { type KafkaClientModule, KafkaSubscription } from './subscription.ts';
import { consumerGroupId, KafkaTopics, retryTopic, streamTopic } from './topics.ts';

/** Options of a {@link KafkaBus}: the URL's options plus the client id. */
export interface KafkaBusInit extends KafkaBusOptions {
  /** Names this process to the brokers (shown in their logs and in group listings). */
  clientId: string;
}

// The client's own retries on a failed request: a broker leader change or a short blip is absorbed here; anything
// longer surfaces (a publish rejects, a consumer is replaced) instead of hanging.
const CLIENT_RETRIES = 5;
const CLIENT_RETRY_DELAY_MS = 250;
const CHECK_TIMEOUT_MS = 5_000;

/**
 * The Kafka bus, on `@platformatic/kafka` (a pure-JavaScript client). Each stream is a topic, created on first use
 * with `partitions` partitions; each Gantry group is a Kafka consumer group (`<stream>:<group>`).
 *
 * How the contract is met:
 * - `publish` resolves once the partition leader and its in-sync replicas hold the record (acks = all). The
 *   envelope travels in CloudEvents binary mode: `ce_*` headers, `data` as the value, `subject` as the key, so one
 *   key always lands on one partition and keeps its order. A publish that fails after the client's retries (the
 *   cluster unreachable, say during a broker restart) rejects with `GANTRY_ERR_BUS_UNAVAILABLE` (retryable); the
 *   caller (the outbox, or a test) publishes again. Publishes issued together share produce requests.
 * - Offsets are committed by hand, per partition, only up to the first message not yet settled, so nothing after a
 *   crash is lost; what was settled but not yet committed is delivered again (at least once).
 * - `retry(delay)` writes the message to the retry topic `<stream>.retry.<group>` with `gantry-attempt` (the next
 *   attempt) and `gantry-not-before` headers, then counts the original as settled. The same subscription reads the
 *   retry topic and holds each retry partition until its head is due, while other partitions go on.
 * - A consumer that dies (process killed) loses its partitions after Kafka's session timeout (`sessionTimeoutMs`);
 *   the group rebalances and another member reads from the last commit. Kafka cannot count those deliveries, so such
 *   a message comes back with `attempt` 1. A consumer that lives but never settles a delivery (a hung handler) hands
 *   it on itself after `claimTimeoutMs`: to the retry topic, on a partition it does not hold, with the attempt
 *   counted; its slot stays taken until the handler returns.
 * - Rebalances use a sticky assigner (see `stickyAssigner`) that keeps partitions with work in hand where they are.
 *
 * @remarks Ordering holds per key on the stream's topic for a subscriber of concurrency 1; retried messages come
 * back through another topic, after later messages of their key. Attempts count only through the retry topic.
 * `stats` reports lag from the admin API: end offsets minus the group's committed offsets, over both topics.
 *
 * @example
 * const bus = await createKafkaBus('kafka://localhost:9092?partitions=12', { instanceId: 'billing-1' });
 */
export class KafkaBus implements Bus {
  readonly kind = 'kafka';
  readonly embedded = false;
  readonly #client: KafkaClientModule;
  readonly #options: KafkaBusInit;
  readonly #connection: BaseOptions;
  readonly #producer: Producer;
  readonly #admin: Admin;
  readonly #publisher: KafkaPublisher;
  readonly #topics: KafkaTopics;
  readonly #subscriptions = new Set<KafkaSubscription>();
  #closed = false;

  /**
   * Prefer {@link createKafkaBus}, which loads the client lazily. No connection is made until the first call.
   *
   * @param client - the `@platformatic/kafka` module
   */
  constructor(client: KafkaClientModule, options: KafkaBusInit) {
    this.#client = client;
    this.#options = options;
    this.#connection = {
      clientId: options.clientId.replace(/\s+/g, '_'),
      bootstrapBrokers: options.brokers,
      retries: CLIENT_RETRIES,
      retryDelay: CLIENT_RETRY_DELAY_MS,
      ...(options.tls ? { tls: {} } : {}),
      ...(options.sasl ? { sasl: { ...options.sasl } } : {}),
    };
    this.#producer = new client.Producer({ ...this.#connection, autocreateTopics: false });
    this.#admin = new client.Admin({ ...this.#connection });
    // The clients are event emitters; an 'error' without a listener would throw out of the event loop. Failures
    // reach callers through the promises of the calls that failed.
    this.#producer.on('error', () => undefined);
    this.#admin.on('error', () => undefined);
    this.#publisher = new KafkaPublisher(this.#producer);
    this.#topics = new KafkaTopics(this.#admin, { partitions: options.partitions, replicas: options.replicas });
  }

  async publish(stream: string, envelope: Envelope): Promise<void> {
    if (this.#closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot publish to ${stream}`);
    const topic = streamTopic(stream);
    try {
      await this.#topics.ensure(topic);
      await this.#publisher.send({ topic, ...encodeKafkaRecord(envelope) });
    } catch (error) {
      throw kafkaError(`publishing to ${stream}`, error);
    }
  }

  async subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    if (this.#closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot subscribe to ${stream}`);
    const topic = streamTopic(stream);
    const retry = retryTopic(stream, group);
    const groupId = consumerGroupId(stream, group);
    try {
      const [partitions, retryPartitions] = await Promise.all([this.#topics.ensure(topic), this.#topics.ensure(retry)]);
      await this.#topics.startGroupAtEnd(groupId, topic, partitions);
      const subscription: KafkaSubscription = new KafkaSubscription({
        client: this.#client,
        connection: this.#connection,
        options: this.#options,
        topic,
        retryTopic: retry,
        retryPartitions,
        groupId,
        concurrency: options.concurrency,
        consumerName: options.consumerName,
        onDelivery,
        publisher: this.#publisher,
        onClosed: (closed) => this.#subscriptions.delete(closed),
      });
      await subscription.start();
      this.#subscriptions.add(subscription);
      return subscription;
    } catch (error) {
      throw kafkaError(`subscribing to ${stream}`, error);
    }
  }

  async stats(stream: string, group?: string): Promise<StreamStats> {
    if (group === undefined) return { stream };
    try {
      const lag = await this.#topics.lag(consumerGroupId(stream, group), [
        streamTopic(stream),
        retryTopic(stream, group),
      ]);
      return { stream, group, lag };
    } catch (error) {
      throw kafkaError(`reading the lag of ${stream} for ${group}`, error);
    }
  }

  async check(): Promise<CheckResult> {
    if (this.#closed) return { ok: false, detail: 'closed' };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#topics.check(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no broker answered within ${CHECK_TIMEOUT_MS} ms`)),
            CHECK_TIMEOUT_MS,
          );
        }),
      ]);
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: describe(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits for pending publishes, then closes the clients. Subscriptions should be stopped first; any still running
   * are dropped without committing (their messages are delivered again).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const subscription of [...this.#subscriptions]) await subscription.forceClose();
    await this.#publisher.flush();
    await this.#producer.close().catch(() => undefined);
    await this.#admin.close().catch(() => undefined);
  }

  /** Deletes topics this bus may have created, ignoring unknown ones; for tests and tools (never used by the bus). */
  async deleteTopics(topics: string[]): Promise<void> {
    await this.#topics.delete(topics);
  }
}

/**
 * Opens a {@link KafkaBus} for a `kafka://` URL (see {@link parseKafkaUrl} for its options), loading
 * `@platformatic/kafka` only now; a missing package fails with `GANTRY_ERR_DRIVER_MISSING_PACKAGE`.
 *
 * @example
 * const bus = await createKafkaBus('kafka://k1:9092,k2:9092?claimTimeoutMs=60000', { instanceId: 'orders-1' });
 */
export async function createKafkaBus(url: string | URL, options: { instanceId: string }): Promise<KafkaBus> {
  const parsed = parseKafkaUrl(url);
  const client = await loadClient(() => import('@platformatic/kafka'), '@platformatic/kafka');
  return new KafkaBus(client, { ...parsed, clientId: options.instanceId });
}

/** A client error as a Gantry error: unreachable cluster → retryable 503, anything else → internal. */
function kafkaError(action: string, error: unknown): GantryError {
  if (error instanceof GantryError) return error;
  const found = (property: string, value: unknown): boolean => {
    const match = (error as { findBy?: (p: string, v: unknown) => unknown } | null)?.findBy?.(property, value);
    return match !== null && match !== undefined;
  };
  const message = describe(error);
  if (found('code', 'PLT_KFK_NETWORK') || found('code', 'PLT_KFK_TIMEOUT')) {
    return new GantryError(
      'GANTRY_ERR_BUS_UNAVAILABLE',
      `kafka bus: ${action} failed, the cluster is unreachable: ${message}`,
      { cause: error },
    );
  }
  return new GantryError('GANTRY_ERR_INTERNAL', `kafka bus: ${action} failed: ${message}`, {
    cause: error,
    retryable: !found('canRetry', false),
  });
}

/** The message of an error, with the last underlying error of an aggregate (the client wraps its retries). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const inner = error instanceof AggregateError ? (error.errors.at(-1) as unknown) : undefined;
  return inner instanceof Error && inner.message !== error.message
    ? `${error.message} (${inner.message})`
    : error.message;
}
