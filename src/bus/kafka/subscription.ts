import type { BaseOptions, Consumer, Message, MessagesStream } from '@platformatic/kafka';
import type { Delivery, Subscription } from '../bus.ts';
import { encodeOwnership, STICKY_PROTOCOL, stickyAssigner } from './assigner.ts';
import { decodeKafkaRecord, readAttempt, readKafkaHeaders, readNotBefore, retryHeaders } from './codec.ts';
import { PartitionOffsets } from './offsets.ts';
import type { KafkaBusOptions } from './options.ts';
import type { KafkaPublisher } from './producer.ts';

/** The client module, loaded lazily by the bus factory. */
export type KafkaClientModule = typeof import('@platformatic/kafka');

type BytesMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type BytesConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
type BytesStream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;
/** The stream's own topic, or the group's retry topic: each is fetched by its own client stream. */
type Source = 'main' | 'retry';

/** What one subscription needs from its bus. */
export interface KafkaSubscriptionInit {
  client: KafkaClientModule;
  /** Client id, brokers, TLS, SASL and retries shared by the bus's clients. */
  connection: BaseOptions;
  options: KafkaBusOptions;
  topic: string;
  retryTopic: string;
  /** Partition count of the retry topic, to pick a partition away from this consumer on a claim. */
  retryPartitions: number;
  groupId: string;
  concurrency: number;
  consumerName: string;
  onDelivery: (delivery: Delivery) => Promise<void>;
  publisher: KafkaPublisher;
  /** Called once the subscription released its consumer, so the bus forgets it. */
  onClosed: (subscription: KafkaSubscription) => void;
}

/** A message taken from a partition and waiting for a free slot (or, on the retry topic, for its time). */
interface Pending {
  message: BytesMessage;
  headers: Record<string, string>;
  attempt: number;
  notBefore: number;
}

interface PartitionState {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  readonly source: Source;
  readonly session: Session;
  readonly offsets: PartitionOffsets;
  queue: Pending[];
  /** Deliveries handed out and not settled. */
  inHand: number;
  /** Set when the partition left this consumer (or the consumer was replaced): its work is no longer committed. */
  revoked: boolean;
  wake?: NodeJS.Timeout;
  wakeAt: number;
}

/** One consumer instance and what hangs off it; replaced as a whole when the consumer fails beyond its retries. */
interface Session {
  readonly consumer: BytesConsumer;
  readonly streams: Map<Source, BytesStream>;
  readonly states: Map<string, PartitionState>;
  order: PartitionState[];
  /** `topic:partition` of every partition assigned to this consumer now. */
  assigned: Set<string>;
  /** True from a rebalance's start to its end: nothing new is handed out while partitions may move. */
  holding: boolean;
  dead: boolean;
  buffered: Record<Source, number>;
  pausedByUs: Record<Source, boolean>;
  committing?: Promise<void>;
  commitAgain: boolean;
  commitRetry?: NodeJS.Timeout;
}

/** One delivery from hand-out to settlement. */
interface InHand {
  phase: 'open' | 'settling' | 'settled';
  handlerDone: boolean;
  /** The claim timeout handed it on: the handler may still run, but nobody waits for it any more. */
  claimed: boolean;
  timer?: NodeJS.Timeout;
}

const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 5_000;
const COMMIT_RETRY_MS = 1_000;
const HAND_ON_RETRY_MS = 1_000;

/**
 * One running subscription of a Kafka bus: a consumer in the group `<stream>:<group>` reading the stream's topic and
 * the group's retry topic, each through its own client stream so waiting retries never hold up fresh messages.
 *
 * Delivery: messages go into a queue per partition and are handed out round-robin across partitions, at most
 * `concurrency` at a time; fetching pauses while a source's queues hold more than twice that. A message on the retry
 * topic is not handed out before its `gantry-not-before` time; its partition waits (a timer wakes it) while the other
 * partitions go on. Commit: per partition, the offset after the longest run of settled messages from the last commit,
 * one commit request in flight per consumer, batching what settled meanwhile.
 */
export class KafkaSubscription implements Subscription {
  readonly #init: KafkaSubscriptionInit;
  readonly #concurrency: number;
  readonly #bufferLimit: number;
  /** The group protocol entry; its user data is read at every join, so the leader sees what this member holds now. */
  readonly #protocol: { name: string; version: number; readonly metadata: Buffer };
  #session: Session | undefined;
  /** Handlers running: the slots `concurrency` bounds. A claimed handler keeps its slot until it returns. */
  #active = 0;
  /** Handlers still running after the claim timeout handed their message on. */
  #claimedRunning = 0;
  /** Whether the group was last told this member is stalled (every slot held by a claimed handler). */
  #announcedStalled = false;
  readonly #inHand = new Set<InHand>();
  #cursor = 0;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #idle: (() => void)[] = [];
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelay = RESTART_MIN_MS;

  constructor(init: KafkaSubscriptionInit) {
    this.#init = init;
    this.#concurrency = Math.max(1, init.concurrency);
    this.#bufferLimit = Math.max(64, this.#concurrency * 2);
    const ownership = (): Buffer => this.#ownership();
    this.#protocol = {
      name: STICKY_PROTOCOL,
      version: 1,
      get metadata() {
        return ownership();
      },
    };
  }

  /** Joins the group and starts fetching; rejects when the cluster cannot be reached. */
  async start(): Promise<void> {
    await this.#open();
  }

  /**
   * Stops fetching, waits until every delivery in hand is settled (acked, retried, or handed on by the claim timeout,
   * so a hung handler delays this by `claimTimeoutMs` at most), commits, and leaves the group.
   */
  stop(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#stopped = (async () => {
      const session = this.#session;
      if (session) {
        for (const stream of session.streams.values()) await stream.close().catch(() => undefined);
        for (const state of session.order) clearTimeout(state.wake);
      }
      await this.#waitIdle();
      if (session && !session.dead) {
        await this.#flushCommits(session);
        await this.#closeSession(session, false);
      }
      this.#init.onClosed(this);
    })();
    return this.#stopped;
  }

  /** Drops the consumer at once without waiting or committing (the bus closing under a running subscription). */
  async forceClose(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    for (const record of this.#inHand) clearTimeout(record.timer);
    const session = this.#session;
    if (session && !session.dead) await this.#closeSession(session, true);
    for (const resolve of this.#idle.splice(0)) resolve();
    this.#init.onClosed(this);
  }

  async #open(): Promise<void> {
    const { client, connection, options, consumerName } = this.#init;
    const consumer = new client.Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...connection,
      clientId: `${connection.clientId}/${consumerName}`.replace(/\s+/g, '_'),
      groupId: this.#init.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      // The client rejoins from its heartbeat timer, independent of handlers, so members need no long grace to rejoin.
      rebalanceTimeout: Math.max(options.sessionTimeoutMs, 30_000),
      protocols: [this.#protocol],
      partitionAssigner: stickyAssigner,
      autocommit: false,
      maxWaitTime: options.maxWaitMs,
      highWaterMark: this.#bufferLimit,
    });
    const session: Session = {
      consumer,
      streams: new Map(),
      states: new Map(),
      order: [],
      assigned: new Set(),
      holding: false,
      dead: false,
      buffered: { main: 0, retry: 0 },
      pausedByUs: { main: false, retry: false },
      commitAgain: false,
    };
    consumer.on('consumer:group:join', () => this.#onJoin(session));
    consumer.on('consumer:group:rebalance', () => {
      session.holding = true;
    });
    // Emitted when a rejoin failed beyond the client's retries: this consumer is out of the group for good.
    consumer.on('error', () => this.#onFatal(session));
    this.#session = session;
    try {
      for (const source of ['main', 'retry'] as const)
        session.streams.set(source, await this.#consume(session, source));
    } catch (error) {
      await this.#closeSession(session, true);
      if (this.#session === session) this.#session = undefined;
      throw error;
    }
    // A stop() that came while a replacement consumer was joining found no session to close: close it here.
    if (this.#stopping) await this.#closeSession(session, true);
  }

  async #consume(session: Session, source: Source): Promise<BytesStream> {
    const stream = await session.consumer.consume({
      topics: [source === 'main' ? this.#init.topic : this.#init.retryTopic],
      mode: 'committed',
      // A partition without a commit is read from its start: the bus fixed a new group's start at subscribe (see
      // KafkaTopics.startGroupAtEnd), so this only covers partitions added later, which must be read whole.
      fallbackMode: 'earliest',
      autocommit: false,
      maxWaitTime: this.#init.options.maxWaitMs,
      highWaterMark: this.#bufferLimit,
    });
    stream.on('data', (message: BytesMessage) => this.#onMessage(session, source, message));
    stream.on('error', () => this.#onFatal(session));
    stream.on('close', () => {
      if (!this.#stopping) this.#onFatal(session);
    });
    return stream;
  }

  /** After every rebalance: forget partitions that left (their queued messages go with them), hand out again. */
  #onJoin(session: Session): void {
    if (session.dead) return;
    const assigned = new Set<string>();
    for (const { topic, partitions } of session.consumer.assignments ?? [])
      for (const partition of partitions) assigned.add(`${topic}:${partition}`);
    for (const state of session.order) if (!assigned.has(state.key)) this.#revoke(state);
    session.order = session.order.filter((state) => !state.revoked);
    session.assigned = assigned;
    session.holding = false;
    this.#pump();
  }

  #revoke(state: PartitionState): void {
    const { session } = state;
    state.revoked = true;
    clearTimeout(state.wake);
    session.buffered[state.source] -= state.queue.length;
    state.queue = [];
    session.states.delete(state.key);
    this.#resumeIfDrained(session, state.source);
  }

  #onMessage(session: Session, source: Source, message: BytesMessage): void {
    if (session.dead || this.#stopping) return;
    const key = `${message.topic}:${message.partition}`;
    // A fetch issued before a rebalance can still bring records of a partition that has left.
    if (!session.assigned.has(key)) return;
    let state = session.states.get(key);
    if (!state) {
      state = {
        key,
        topic: message.topic,
        partition: message.partition,
        source,
        session,
        offsets: new PartitionOffsets(),
        queue: [],
        inHand: 0,
        revoked: false,
        wakeAt: 0,
      };
      session.states.set(key, state);
      session.order.push(state);
    }
    if (!state.offsets.accept(message.offset)) return;
    const headers = readKafkaHeaders(message.headers);
    // Only the retry topic carries attempts: Kafka itself cannot count the deliveries of a record.
    state.queue.push({
      message,
      headers,
      attempt: source === 'retry' ? readAttempt(headers) : 1,
      notBefore: source === 'retry' ? readNotBefore(headers) : 0,
    });
    session.buffered[source]++;
    if (session.buffered[source] >= this.#bufferLimit && !session.pausedByUs[source]) {
      session.pausedByUs[source] = true;
      session.streams.get(source)?.pause();
    }
    this.#pump();
  }

  #pump(): void {
    const session = this.#session;
    if (!session || session.dead || session.holding || this.#stopping) return;
    const now = Date.now();
    while (this.#active < this.#concurrency) {
      const next = this.#takeNext(session, now);
      if (!next) return;
      this.#deliver(next.state, next.pending);
    }
  }

  /** The next message to hand out, round-robin over partitions, skipping retry partitions whose head is not due. */
  #takeNext(session: Session, now: number): { state: PartitionState; pending: Pending } | undefined {
    const count = session.order.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#cursor + i) % count;
      const state = session.order[index] as PartitionState;
      const head = state.queue[0];
      if (!head) continue;
      if (head.notBefore > now) {
        this.#wakeAt(state, head.notBefore);
        continue;
      }
      this.#cursor = (index + 1) % count;
      state.queue.shift();
      session.buffered[state.source]--;
      this.#resumeIfDrained(session, state.source);
      return { state, pending: head };
    }
    return undefined;
  }

  #wakeAt(state: PartitionState, at: number): void {
    if (state.wake && state.wakeAt <= at) return;
    clearTimeout(state.wake);
    state.wakeAt = at;
    state.wake = setTimeout(
      () => {
        state.wake = undefined;
        this.#pump();
      },
      Math.max(1, at - Date.now()),
    );
  }

  #resumeIfDrained(session: Session, source: Source): void {
    if (session.pausedByUs[source] && session.buffered[source] <= this.#bufferLimit / 2) {
      session.pausedByUs[source] = false;
      session.streams.get(source)?.resume();
    }
  }

  #deliver(state: PartitionState, pending: Pending): void {
    const { claimTimeoutMs } = this.#init.options;
    const { message } = pending;
    this.#active++;
    state.inHand++;
    const record: InHand = { phase: 'open', handlerDone: false, claimed: false };
    this.#inHand.add(record);

    const settle = (): void => {
      if (record.phase === 'settled') return;
      record.phase = 'settled';
      clearTimeout(record.timer);
      state.inHand--;
      state.offsets.settle(message.offset);
      if (!state.revoked) this.#scheduleCommit(state.session);
      this.#release(record);
    };
    // Hands the message to the group again through the retry topic, with the attempt counted.
    const handOn = async (notBefore: number, awayFromHere: boolean): Promise<void> => {
      // A partition that left is read again by its new owner from the last commit, which is before this message.
      if (state.revoked) return;
      const partition = awayFromHere ? this.#partitionElsewhere(state.session) : undefined;
      await this.#init.publisher.send({
        topic: this.#init.retryTopic,
        value: message.value ?? Buffer.alloc(0),
        headers: retryHeaders(message.headers, pending.attempt + 1, notBefore),
        ...(message.key ? { key: message.key } : {}),
        ...(partition !== undefined ? { partition } : {}),
      });
    };
    // Shared by the claim timeout and a handler that returned without settling: hand on now, or try again later.
    const handOnNow = (claimed: boolean): void => {
      record.phase = 'settling';
      record.claimed = claimed;
      if (claimed) this.#claimedRunning++;
      clearTimeout(record.timer);
      handOn(Date.now(), claimed).then(
        () => {
          settle();
          if (claimed) this.#checkStalled();
        },
        () => {
          record.phase = 'open';
          if (record.claimed && !record.handlerDone) this.#claimedRunning--;
          record.claimed = false;
          // Try again: by the claim timer while the handler runs, or shortly when it has returned.
          if (!record.handlerDone) arm();
          else {
            record.timer = setTimeout(() => {
              if (record.phase === 'open') handOnNow(false);
            }, HAND_ON_RETRY_MS);
          }
        },
      );
    };
    const arm = (): void => {
      record.timer = setTimeout(() => {
        if (record.phase === 'open') handOnNow(true);
      }, claimTimeoutMs);
    };
    arm();

    const decoded = decodeKafkaRecord(pending.headers, message.value);
    const delivery: Delivery = {
      envelope: decoded.ok ? decoded.envelope : null,
      ...(decoded.ok ? {} : { decodeError: decoded.error, raw: decoded.raw }),
      attempt: pending.attempt,
      ack: async () => {
        if (record.phase === 'open') settle();
      },
      retry: async (delayMs) => {
        if (record.phase !== 'open') return;
        record.phase = 'settling';
        clearTimeout(record.timer);
        try {
          await handOn(Date.now() + Math.max(0, delayMs), false);
        } catch (error) {
          record.phase = 'open';
          arm();
          throw error;
        }
        settle();
      },
    };
    const finish = (): void => {
      record.handlerDone = true;
      this.#active--;
      if (record.claimed) {
        this.#claimedRunning--;
        this.#checkStalled();
      }
      // A handler that neither acked nor retried gives the message back, as the in-memory bus does.
      if (record.phase === 'open') handOnNow(false);
      this.#release(record);
      this.#pump();
    };
    let handled: Promise<void>;
    try {
      handled = this.#init.onDelivery(delivery);
    } catch (error) {
      // A handler that throws before its first await must not break the fetch loop that called it.
      handled = Promise.reject(error);
    }
    handled.then(finish, finish);
  }

  /**
   * Tells the group when this member becomes stalled (every slot held by a handler past its claim timeout) or stops
   * being so, by joining again with the new state in its user data: the sticky assigner then moves its partitions to
   * members that can work, and gives them back later. Commits go first, so settled work is not repeated.
   */
  #checkStalled(): void {
    const stalled = this.#claimedRunning >= this.#concurrency;
    const session = this.#session;
    if (stalled === this.#announcedStalled || !session || session.dead || this.#stopping) return;
    this.#announcedStalled = stalled;
    void this.#flushCommits(session)
      .then(() => {
        if (!session.dead && !this.#stopping) return session.consumer.joinGroup().then(() => undefined);
      })
      .catch(() => undefined);
  }

  /** A retry-topic partition this consumer does not hold, so a claimed message goes to another member if any. */
  #partitionElsewhere(session: Session): number | undefined {
    const elsewhere: number[] = [];
    for (let partition = 0; partition < this.#init.retryPartitions; partition++) {
      if (!session.assigned.has(`${this.#init.retryTopic}:${partition}`)) elsewhere.push(partition);
    }
    return elsewhere.length === 0 ? undefined : elsewhere[Math.floor(Math.random() * elsewhere.length)];
  }

  #release(record: InHand): void {
    if (record.phase !== 'settled' || !(record.handlerDone || record.claimed)) return;
    this.#inHand.delete(record);
    if (this.#inHand.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #waitIdle(): Promise<void> {
    if (this.#inHand.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #scheduleCommit(session: Session): void {
    if (session.dead) return;
    if (session.committing) {
      session.commitAgain = true;
      return;
    }
    session.committing = this.#commitLoop(session).finally(() => {
      session.committing = undefined;
      if (session.commitAgain) this.#scheduleCommit(session);
    });
  }

  async #commitLoop(session: Session): Promise<void> {
    do {
      session.commitAgain = false;
      const batch: { state: PartitionState; offset: bigint }[] = [];
      for (const state of session.order) {
        const offset = state.revoked ? undefined : state.offsets.toCommit();
        if (offset !== undefined) batch.push({ state, offset });
      }
      if (batch.length === 0) return;
      try {
        await session.consumer.commit({
          // The leader epoch of a message is not exposed by the client; -1 means "unknown", which Kafka accepts.
          offsets: batch.map(({ state, offset }) => ({
            topic: state.topic,
            partition: state.partition,
            offset,
            leaderEpoch: -1,
          })),
        });
      } catch {
        // The offsets stay pending: the next settle or this timer commits them. Until then a rebalance or a crash
        // only repeats work (at least once), it never skips any.
        if (!session.dead && !session.commitRetry) {
          session.commitRetry = setTimeout(() => {
            session.commitRetry = undefined;
            this.#scheduleCommit(session);
          }, COMMIT_RETRY_MS);
        }
        return;
      }
      for (const { state, offset } of batch) state.offsets.markCommitted(offset);
    } while (session.commitAgain);
  }

  async #flushCommits(session: Session): Promise<void> {
    while (session.committing) await session.committing;
    this.#scheduleCommit(session);
    while (session.committing) await session.committing;
  }

  /** What this member holds and which of it is busy, for the sticky assigner at the next rebalance. */
  #ownership(): Buffer {
    const owned: Record<string, number[]> = {};
    const busy: Record<string, number[]> = {};
    const session = this.#session;
    if (session && !session.dead) {
      for (const key of session.assigned) {
        const colon = key.lastIndexOf(':');
        const topic = key.slice(0, colon);
        const list = owned[topic] ?? [];
        list.push(Number(key.slice(colon + 1)));
        owned[topic] = list;
      }
      for (const state of session.order) {
        if (state.revoked || (state.inHand === 0 && !state.offsets.uncommitted)) continue;
        const list = busy[state.topic] ?? [];
        list.push(state.partition);
        busy[state.topic] = list;
      }
    }
    return encodeOwnership({ owned, busy, ...(this.#claimedRunning >= this.#concurrency ? { stalled: true } : {}) });
  }

  /** The consumer failed beyond its own retries (broker gone for long): replace it, with a growing pause between tries. */
  #onFatal(session: Session): void {
    if (session.dead || this.#stopping || session !== this.#session) return;
    void this.#closeSession(session, true);
    this.#session = undefined;
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#stopping) return;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(RESTART_MAX_MS, delay * 2);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      this.#open().then(
        () => {
          this.#restartDelay = RESTART_MIN_MS;
          this.#pump();
        },
        () => this.#scheduleRestart(),
      );
    }, delay);
  }

  /**
   * Ends a session: its partitions count as revoked (deliveries still in hand settle without committing), its
   * timers stop, and the consumer closes, leaving the group. A close that fails (the broker is away) is retried in
   * the background so the sockets do not outlive the session.
   */
  async #closeSession(session: Session, force: boolean): Promise<void> {
    session.dead = true;
    clearTimeout(session.commitRetry);
    for (const state of session.order) {
      state.revoked = true;
      clearTimeout(state.wake);
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await session.consumer.close(force || attempt > 0);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }
}
