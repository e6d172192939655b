import type { Admin } from '@platformatic/kafka';
import { GantryError } from '../../errors/gantry-error.ts';

/** Kafka's rule for topic names: ASCII letters, digits, `.`, `_` and `-`, at most 249 characters. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

// ListOffsets' special timestamps (the client exports them too, but this module must not load the client).
const LATEST = -1n;
const EARLIEST = -2n;

/**
 * The topic a stream is stored in: the stream name itself, checked against Kafka's rule so a bad name fails at
 * subscribe or publish with a clear error rather than deep in the client.
 */
export function streamTopic(stream: string): string {
  return checkedTopic(stream, `stream '${stream}'`);
}

/** The topic where `group` hands messages of `stream` back to itself for a later attempt: `<stream>.retry.<group>`. */
export function retryTopic(stream: string, group: string): string {
  return checkedTopic(`${stream}.retry.${group}`, `retry topic of stream '${stream}' and group '${group}'`);
}

/**
 * The Kafka consumer group of one Gantry group on one stream. Gantry names groups per stream (many streams have a
 * group `billing`), while a Kafka group's members must all read the same topics, so the stream is part of the id.
 */
export function consumerGroupId(stream: string, group: string): string {
  return `${stream}:${group}`;
}

function checkedTopic(name: string, what: string): string {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new GantryError(
      'GANTRY_ERR_SERVICE_DEFINITION',
      `kafka bus: the ${what} is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249 characters)`,
    );
  }
  return name;
}

/** Options of {@link KafkaTopics}. */
export interface KafkaTopicsOptions {
  /** Partitions of a topic created here. */
  partitions: number;
  /** Replication factor of a topic created here; -1 for the broker's default. */
  replicas: number;
}

/**
 * The adapter's use of the admin API: topics created on demand, a new group's starting point, and lag. One per bus.
 */
export class KafkaTopics {
  readonly #admin: Admin;
  readonly #options: KafkaTopicsOptions;
  /** Partition counts of the topics known to exist, as promises so concurrent callers share one creation. */
  readonly #known = new Map<string, Promise<number>>();

  constructor(admin: Admin, options: KafkaTopicsOptions) {
    this.#admin = admin;
    this.#options = options;
  }

  /**
   * Creates `topic` when it does not exist yet (with the configured partitions and replicas) and waits until every
   * partition has a leader, so a publish or a group join right after does not meet an unknown topic. Resolves to the
   * topic's partition count, which may differ from the configured one for a topic made elsewhere.
   */
  ensure(topic: string): Promise<number> {
    let known = this.#known.get(topic);
    if (!known) {
      known = this.#create(topic);
      this.#known.set(topic, known);
      // A failure is not remembered: the next call tries again (the broker may have been away).
      known.catch(() => this.#known.delete(topic));
    }
    return known;
  }

  /**
   * Fixes where a group starts reading a topic the first time it subscribes: at the end, as it is at this moment. The
   * contract promises a group the messages published after its first subscription; without this the consumer would
   * fall back to the earliest offset for partitions without a commit and replay the topic's retained history.
   *
   * Does nothing when the group has committed anything on the topic. Kafka refuses the write while the group has
   * members; then one of them started it already, and the error is swallowed on purpose.
   */
  async startGroupAtEnd(groupId: string, topic: string, partitions: number): Promise<void> {
    const indexes = range(partitions);
    try {
      const listed = await this.#admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: [{ name: topic, partitionIndexes: indexes }] }],
      });
      const committed =
        listed.find((g) => g.groupId === groupId)?.topics.find((t) => t.name === topic)?.partitions ?? [];
      if (committed.some((p) => p.committedOffset >= 0n)) return;
      const ends = await this.#offsets(topic, partitions, LATEST);
      await this.#admin.alterConsumerGroupOffsets({
        groupId,
        topics: [{ name: topic, partitionOffsets: [...ends].map(([partition, offset]) => ({ partition, offset })) }],
      });
    } catch {
      // Not fatal: partitions without a commit are then read from the earliest offset (more, never less).
    }
  }

  /**
   * Messages of `topics` the group has not committed yet: end offset minus committed offset, summed over partitions
   * (end minus start for a partition the group never committed). Topics that do not exist count zero.
   */
  async lag(groupId: string, topics: string[]): Promise<number> {
    const counts = new Map<string, number>();
    const existing = await this.#existing(topics);
    for (const topic of existing) counts.set(topic, await this.#partitionCount(topic));
    if (counts.size === 0) return 0;
    const listed = await this.#admin.listConsumerGroupOffsets({
      groups: [{ groupId, topics: [...counts].map(([name, n]) => ({ name, partitionIndexes: range(n) })) }],
    });
    const group = listed.find((g) => g.groupId === groupId);
    let lag = 0n;
    for (const [topic, count] of counts) {
      const ends = await this.#offsets(topic, count, LATEST);
      const committed = new Map(
        (group?.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => [
          p.partitionIndex,
          p.committedOffset,
        ]),
      );
      const starts =
        [...committed.values()].some((offset) => offset < 0n) || committed.size < count
          ? await this.#offsets(topic, count, EARLIEST)
          : undefined;
      for (const [partition, end] of ends) {
        const from = committed.get(partition) ?? -1n;
        const base = from >= 0n ? from : (starts?.get(partition) ?? 0n);
        if (end > base) lag += end - base;
      }
    }
    return Number(lag);
  }

  /** Reaches the cluster: resolves when a broker answers a metadata request. */
  async check(): Promise<void> {
    await this.#admin.metadata({ topics: [], forceUpdate: true });
  }

  /** Deletes topics (used by tests and tools; the bus itself never deletes). Unknown topics are ignored. */
  async delete(topics: string[]): Promise<void> {
    const existing = await this.#existing(topics);
    for (const topic of topics) this.#known.delete(topic);
    if (existing.length > 0) await this.#admin.deleteTopics({ topics: existing });
  }

  async #create(topic: string): Promise<number> {
    try {
      await this.#admin.createTopics({
        topics: [topic],
        partitions: this.#options.partitions,
        replicas: this.#options.replicas,
      });
    } catch (error) {
      if (!hasApiError(error, 'TOPIC_ALREADY_EXISTS')) throw error;
    }
    return this.#waitForLeaders(topic);
  }

  /** Polls the metadata until every partition of a new topic has a leader; creation is asynchronous in Kafka. */
  async #waitForLeaders(topic: string): Promise<number> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const metadata = await this.#admin.metadata({ topics: [topic], forceUpdate: true });
        const found = metadata.topics.get(topic);
        if (found && found.partitionsCount > 0 && found.partitions.every((p) => p !== undefined && p.leader >= 0))
          return found.partitionsCount;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) throw new Error(`topic ${topic} has partitions without a leader after 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async #partitionCount(topic: string): Promise<number> {
    const known = this.#known.get(topic);
    if (known) return known;
    const metadata = await this.#admin.metadata({ topics: [topic] });
    return metadata.topics.get(topic)?.partitionsCount ?? 0;
  }

  async #existing(topics: string[]): Promise<string[]> {
    const unknown = topics.filter((t) => !this.#known.has(t));
    if (unknown.length === 0) return topics;
    // One listing rather than a metadata request per topic: the client retries unknown topics for seconds.
    const all = new Set(await this.#admin.listTopics());
    return topics.filter((t) => this.#known.has(t) || all.has(t));
  }

  async #offsets(topic: string, partitions: number, timestamp: bigint): Promise<Map<number, bigint>> {
    const listed = await this.#admin.listOffsets({
      topics: [{ name: topic, partitions: range(partitions).map((partitionIndex) => ({ partitionIndex, timestamp })) }],
    });
    const offsets = new Map<number, bigint>();
    for (const t of listed) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) offsets.set(p.partitionIndex, p.offset);
    }
    return offsets;
  }
}

/** True when a client error (possibly an aggregate) carries the Kafka protocol error `apiId`. */
export function hasApiError(error: unknown, apiId: string): boolean {
  const found = (error as { findBy?: (property: string, value: unknown) => unknown } | null)?.findBy?.('apiId', apiId);
  return found !== null && found !== undefined;
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
