import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, MessagePropertyHeaders, Options } from 'amqplib';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import { decodeMessage, encodeMessage } from '../codec.ts';
import type { Envelope } from '../envelope.ts';
import {
  AMQP_NO_DELAY,
  type AmqpBusOptions,
  type AmqpTopologyNames,
  amqpTopologyNames,
  parseAmqpBusUrl,
  retryTierFor,
} from './options.ts';

/** The amqplib module, loaded only when an AMQP bus is opened. */
type AmqpClient = typeof import('amqplib');

/**
 * Attempts made before this copy of a message was published, set when the adapter republishes a message for a
 * delayed retry (the copy is a new message to the broker, so the broker's own count starts again at zero).
 */
const ATTEMPT_HEADER = 'x-gantry-attempt';

/** Headers the broker sets on a message: they describe the old message, so a republished copy drops them. */
const BROKER_HEADERS = new Set([
  'x-delivery-count',
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
]);

/** The largest prefetch AMQP 0-9-1 can express (a 16-bit count). */
const MAX_PREFETCH = 65_535;

const ignore = (): void => undefined;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Opens an AMQP 0-9-1 bus (RabbitMQ) from an `amqp://` or `amqps://` URL, loading amqplib on first use. Resolves once
 * the broker answered and the exchange exists; keeps trying for `connectTimeoutMs` (default 10 s), then fails with
 * `GANTRY_ERR_BUS_UNAVAILABLE`. A bad URL option fails with `GANTRY_ERR_CONFIG_INVALID`, a missing amqplib with
 * `GANTRY_ERR_DRIVER_MISSING_PACKAGE`.
 *
 * @param url The bus URL; see {@link parseAmqpBusUrl} for its query options.
 * @param options.instanceId Names the connection in the broker's management tools.
 * @example
 * const url = new URL('amqp://guest:guest@127.0.0.1:5672/?exchange=shop');
 * const bus = await openAmqpBus(url, { instanceId: 'orders-1' });
 */
export async function openAmqpBus(url: URL, options: { instanceId: string }): Promise<AmqpBus> {
  const settings = parseAmqpBusUrl(url, options.instanceId);
  const client = await loadClient(() => import('amqplib'), 'amqplib');
  const bus = new AmqpBus(client, settings);
  await bus.connect();
  return bus;
}

/**
 * The RabbitMQ adapter of the bus, on AMQP 0-9-1 through amqplib.
 *
 * Topology: one durable topic exchange (`exchange`, default `gantry`) receives every stream with the stream name as
 * routing key; each (stream, group) has a durable quorum queue `<exchange>:<stream>:<group>` bound to it, created on
 * first subscribe. Quorum queues are chosen over classic ones because they count failed deliveries in the
 * `x-delivery-count` header, which gives {@link Delivery.attempt} from the broker itself, and because they replicate
 * and dead-letter at-least-once.
 *
 * Guarantees:
 * - `publish` resolves once the broker confirmed the persistent message (publisher confirms). When the connection is
 *   down or drops before the confirm, it waits for the adapter to reconnect and publishes again, for up to
 *   `publishTimeoutMs`; past that it rejects with `GANTRY_ERR_BUS_UNAVAILABLE` (retryable). A publish retried that
 *   way may store the message twice: delivery is at-least-once.
 * - A subscription has a channel of its own with prefetch = concurrency and manual acks, so at most `concurrency`
 *   messages are in its hands. Acks made in the same turn of the event loop go out as one multiple-ack; `ack()`
 *   resolves once its ack is written.
 * - `retry(delay)` publishes a copy with a per-message TTL to a retry queue of the group that dead-letters back to the
 *   group queue when the TTL expires, then acks the original; the copy carries the attempts made so far in the
 *   `x-gantry-attempt` header. Retry queues are tiered by delay (powers of two from 64 ms) because the broker only
 *   expires messages at the head of a queue.
 * - RabbitMQ redelivers unacked messages only when their channel closes, so a handler that hangs with its process
 *   alive would hold its message forever. The adapter therefore gives a delivery back itself (basic.reject with
 *   requeue, which counts an attempt) once it stayed unsettled for `claimTimeoutMs` (default 30 s), after taking that
 *   handler's slot away from the broker so the message goes to another consumer. A process that dies loses its
 *   connection, and the broker requeues its messages at once.
 * - After a lost connection (broker restart, network) it reconnects with exponential backoff, declares its topology
 *   again and resumes every subscription. Settling a delivery of the lost connection fails with
 *   `GANTRY_ERR_BUS_UNAVAILABLE`: the broker delivers that message again.
 *
 * @remarks Messages the broker itself dead-letters from a group queue (a delivery limit or a length limit set by
 * policy, for example; RabbitMQ 4 gives quorum queues a default delivery limit of 20) go to the fanout exchange
 * `<exchange>:dead-letter` and its queue of the same name. Order holds per group queue for a consumer of concurrency
 * 1; a retried message comes back behind newer ones, a message given back may come back ahead of them.
 */
export class AmqpBus implements Bus {
  readonly kind = 'amqp';
  readonly embedded = false;
  /** The settings read from the URL. */
  readonly options: AmqpBusOptions;
  /** The names of the queues and exchanges this bus uses. */
  readonly names: AmqpTopologyNames;
  private readonly client: AmqpClient;
  private model: ChannelModel | null = null;
  private publisher: Promise<ConfirmChannel> | null = null;
  /** Set while the publisher's socket buffer is full; publishes wait for it to drain. */
  private drained: Promise<void> | null = null;
  /** Retry queues declared on the current connection. */
  private readonly declared = new Map<string, Promise<void>>();
  private readonly consumers = new Set<AmqpConsumer>();
  private waiters: { resolve: (model: ChannelModel) => void; reject: (error: Error) => void }[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private lastError: Error | undefined;
  private closed = false;

  /**
   * @param client The amqplib module (see {@link openAmqpBus}, which loads it lazily).
   * @param options The settings, as {@link parseAmqpBusUrl} reads them from a URL.
   */
  constructor(client: AmqpClient, options: AmqpBusOptions) {
    this.client = client;
    this.options = options;
    this.names = amqpTopologyNames(options.exchange);
  }

  /** Connects to the broker and declares the exchanges, trying again with backoff for up to `connectTimeoutMs`. */
  async connect(): Promise<void> {
    const deadline = Date.now() + this.options.connectTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.establish();
        return;
      } catch (error) {
        this.lastError = error as Error;
        const pause = this.backoff(attempt);
        if (this.closed || Date.now() + pause > deadline) {
          throw new GantryError(
            'GANTRY_ERR_BUS_UNAVAILABLE',
            `cannot reach the AMQP broker at ${this.options.displayUrl}: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
        await sleep(pause);
      }
    }
  }

  /**
   * Publishes a persistent message to the bus exchange with the stream name as routing key, and resolves when the
   * broker confirmed it. Rides through a reconnection for up to `publishTimeoutMs`, then fails with
   * `GANTRY_ERR_BUS_UNAVAILABLE`.
   */
  async publish(stream: string, envelope: Envelope): Promise<void> {
    const { headers, body } = encodeMessage(envelope);
    const { 'content-type': contentType, ...attributes } = headers;
    await this.send(this.options.exchange, stream, Buffer.from(body), {
      persistent: true,
      contentType,
      messageId: envelope.id,
      headers: attributes,
    });
  }

  /**
   * Declares the group's quorum queue, binds it to the stream, and consumes it with prefetch = `concurrency`. Waits up
   * to `publishTimeoutMs` for a connection. The subscription survives reconnections until `stop()`.
   */
  async subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    if (this.closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot subscribe to ${stream}`);
    const concurrency = Math.min(MAX_PREFETCH, Math.max(1, Math.floor(options.concurrency)));
    const consumer = new AmqpConsumer(this, {
      stream,
      group,
      queue: this.names.groupQueue(stream, group),
      concurrency,
      onDelivery,
    });
    this.consumers.add(consumer);
    try {
      await consumer.start(await this.connection(Date.now() + this.options.publishTimeoutMs));
    } catch (error) {
      this.consumers.delete(consumer);
      await consumer.stop();
      if (error instanceof GantryError) throw error;
      // The connection dropped while the channel opened or the consumer started.
      throw new GantryError(
        'GANTRY_ERR_BUS_UNAVAILABLE',
        `cannot subscribe group '${group}' to '${stream}' on ${this.options.displayUrl}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return { stop: () => consumer.stop() };
  }

  /**
   * The lag of a group: messages ready in its queue plus those waiting in its retry queues. Messages delivered and
   * not yet acked are not counted: AMQP does not report them (the management API does).
   */
  async stats(stream: string, group?: string): Promise<StreamStats> {
    if (group === undefined) return { stream };
    const model = await this.connection(Date.now() + this.options.publishTimeoutMs);
    const queue = this.names.groupQueue(stream, group);
    const queues = [queue, ...this.names.retryTiers.map((tier) => this.names.retryQueue(queue, tier))];
    const counts = await Promise.all(queues.map((name) => readyCount(model, name)));
    return { stream, group, lag: counts.reduce((sum, count) => sum + count, 0) };
  }

  /** Healthy when connected and the broker answers a passive check of the exchange. */
  async check(): Promise<CheckResult> {
    if (this.closed) return { ok: false, detail: 'closed' };
    const model = this.model;
    if (!model)
      return {
        ok: false,
        detail: `reconnecting to ${this.options.displayUrl}: ${this.lastError?.message ?? 'connection lost'}`,
      };
    try {
      await withChannel(model, (channel) => channel.checkExchange(this.options.exchange));
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: (error as Error).message };
    }
  }

  /** Closes the connection. Deliveries still in hand go back to the broker, which delivers them again. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const error = new GantryError('GANTRY_ERR_BUS_CLOSED', 'bus closed');
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    for (const consumer of this.consumers) consumer.shutdown();
    this.consumers.clear();
    const model = this.model;
    this.model = null;
    this.publisher = null;
    if (model) await model.close().catch(ignore);
  }

  /**
   * Deletes the queues of a group (its queue and its retry queues) with whatever they hold. For tests and tooling:
   * stop the group's subscriptions first.
   */
  async deleteGroup(stream: string, group: string): Promise<void> {
    const model = await this.connection(Date.now() + this.options.publishTimeoutMs);
    const queue = this.names.groupQueue(stream, group);
    await withChannel(model, async (channel) => {
      for (const tier of this.names.retryTiers) await channel.deleteQueue(this.names.retryQueue(queue, tier));
      await channel.deleteQueue(queue);
    });
  }

  /** The live connection, or null while reconnecting. @internal */
  current(): ChannelModel | null {
    return this.model;
  }

  /** Forgets a stopped consumer. @internal */
  release(consumer: AmqpConsumer): void {
    this.consumers.delete(consumer);
  }

  /** Declares the queue of a group and binds it to its stream. @internal */
  async declareGroup(channel: Channel, stream: string, queue: string): Promise<void> {
    try {
      await channel.assertQueue(queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': this.names.deadLetterExchange,
          // At-least-once dead-lettering needs reject-publish overflow; without a length limit it changes nothing else.
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
      await channel.bindQueue(queue, this.options.exchange, stream);
    } catch (error) {
      // A refusal from the broker (a queue of that name with other arguments, no permission) is a configuration
      // problem; anything else (the connection dropped) may pass.
      const refused = typeof (error as { code?: unknown }).code === 'number';
      throw new GantryError(
        refused ? 'GANTRY_ERR_CONFIG_INVALID' : 'GANTRY_ERR_BUS_UNAVAILABLE',
        `cannot declare the AMQP queue '${queue}': ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Publishes a copy of a delivered message for another attempt after `delayMs`: through a retry queue whose TTL
   * dead-letters it back to the group queue, or straight to the group queue when there is no delay.
   *
   * @internal
   */
  async republish(queue: string, message: ConsumeMessage, attempt: number, delayMs: number): Promise<void> {
    const headers: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(message.properties.headers ?? {})) {
      if (!BROKER_HEADERS.has(name)) headers[name] = value;
    }
    headers[ATTEMPT_HEADER] = attempt;
    const properties: Options.Publish = { persistent: true, headers };
    if (message.properties.contentType !== undefined) properties.contentType = message.properties.contentType;
    if (message.properties.messageId !== undefined) properties.messageId = message.properties.messageId;
    if (delayMs <= 0) {
      await this.send('', queue, message.content, properties);
      return;
    }
    const retryQueue = this.names.retryQueue(queue, retryTierFor(delayMs));
    await this.declareRetryQueue(retryQueue, queue);
    await this.send('', retryQueue, message.content, { ...properties, expiration: String(Math.ceil(delayMs)) });
  }

  private async declareRetryQueue(retryQueue: string, queue: string): Promise<void> {
    let declared = this.declared.get(retryQueue);
    if (!declared) {
      const model = await this.connection(Date.now() + this.options.publishTimeoutMs);
      declared = withChannel(model, async (channel) => {
        await channel.assertQueue(retryQueue, {
          durable: true,
          arguments: {
            'x-queue-type': 'quorum',
            'x-dead-letter-exchange': '',
            'x-dead-letter-routing-key': queue,
            // The message moves back to its group queue only once that queue confirmed it.
            'x-dead-letter-strategy': 'at-least-once',
            'x-overflow': 'reject-publish',
          },
        });
      });
      this.declared.set(retryQueue, declared);
      declared.catch(() => this.declared.delete(retryQueue));
    }
    await declared;
  }

  /**
   * Publishes with confirm, publishing again on a new channel when the channel or connection went away, until
   * `publishTimeoutMs` passed: that bounds a wait for a reconnection, a full socket, or a broker that holds confirms
   * back (a memory or disk alarm blocks publishers).
   */
  private async send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
  ): Promise<void> {
    const deadline = Date.now() + this.options.publishTimeoutMs;
    for (;;) {
      if (this.closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot publish to ${routingKey}`);
      try {
        // Waits for a connection until the deadline, then fails with GANTRY_ERR_BUS_UNAVAILABLE, rethrown below.
        const channel = await this.confirmChannel(deadline);
        if (this.drained && !(await settlesBefore(this.drained, deadline))) throw new ConfirmTimeout();
        await confirmPublish(channel, exchange, routingKey, content, properties, deadline, (full) =>
          this.onFull(channel, full),
        );
        return;
      } catch (error) {
        if (error instanceof GantryError) throw error;
        if (!(error instanceof ConfirmTimeout)) this.lastError = error as Error;
        const left = deadline - Date.now();
        if (error instanceof ConfirmTimeout || left <= 0) throw this.unconfirmed(routingKey, error);
        // A refusal (nack) on a live channel would be tried again at once; a short pause keeps that from spinning.
        await sleep(Math.min(50, left));
      }
    }
  }

  private unconfirmed(routingKey: string, error: unknown): GantryError {
    // A time-out says only that time ran out; the last failure says why.
    const reason = error instanceof ConfirmTimeout && this.lastError ? this.lastError : (error as Error);
    return new GantryError(
      'GANTRY_ERR_BUS_UNAVAILABLE',
      `publish to '${routingKey}' not confirmed by the AMQP broker at ${this.options.displayUrl} ` +
        `within ${this.options.publishTimeoutMs} ms: ${reason.message}`,
      { cause: error },
    );
  }

  private onFull(channel: ConfirmChannel, full: boolean): void {
    if (!full || this.drained) return;
    this.drained = new Promise<void>((resolve) => {
      const done = (): void => {
        channel.off('drain', done);
        channel.off('close', done);
        this.drained = null;
        resolve();
      };
      channel.on('drain', done);
      channel.on('close', done);
    });
  }

  private async confirmChannel(deadline: number): Promise<ConfirmChannel> {
    if (this.publisher) return this.publisher;
    const model = await this.connection(deadline);
    if (this.publisher) return this.publisher;
    const opening = model.createConfirmChannel().then((channel) => {
      channel.on('error', ignore);
      channel.on('close', () => {
        if (this.publisher === opening) this.publisher = null;
      });
      return channel;
    });
    this.publisher = opening;
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = null;
    });
    return opening;
  }

  /** The live connection, waiting for a reconnection until `deadline`. */
  private connection(deadline: number): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new GantryError('GANTRY_ERR_BUS_CLOSED', 'bus closed'));
    if (this.model) return Promise.resolve(this.model);
    return new Promise<ChannelModel>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(
            new GantryError(
              'GANTRY_ERR_BUS_UNAVAILABLE',
              `no connection to the AMQP broker at ${this.options.displayUrl}: ` +
                (this.lastError?.message ?? 'connection lost'),
              {
                cause: this.lastError,
              },
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      const waiter = {
        resolve: (model: ChannelModel) => {
          clearTimeout(timer);
          resolve(model);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Opens a connection, declares the exchanges, then resumes every subscription on it. */
  private async establish(): Promise<void> {
    const model = await this.client.connect(this.options.connectUrl, {
      clientProperties: { connection_name: this.options.connectionName },
      noDelay: AMQP_NO_DELAY,
      // Bounds the TCP and AMQP handshake, so an address that drops packets fails like one that refuses.
      timeout: Math.max(1_000, Math.min(10_000, this.options.connectTimeoutMs)),
    });
    model.on('error', (error: Error) => {
      this.lastError = error;
    });
    model.on('close', () => this.onConnectionLost(model));
    try {
      await withChannel(model, async (channel) => {
        await channel.assertExchange(this.options.exchange, 'topic', { durable: true });
        await channel.assertExchange(this.names.deadLetterExchange, 'fanout', { durable: true });
        await channel.assertQueue(this.names.deadLetterQueue, {
          durable: true,
          arguments: { 'x-queue-type': 'quorum' },
        });
        await channel.bindQueue(this.names.deadLetterQueue, this.names.deadLetterExchange, '');
      });
    } catch (error) {
      await model.close().catch(ignore);
      throw error;
    }
    if (this.closed) {
      await model.close().catch(ignore);
      throw new GantryError('GANTRY_ERR_BUS_CLOSED', 'bus closed');
    }
    this.model = model;
    this.publisher = null;
    this.drained = null;
    this.declared.clear();
    this.reconnectAttempt = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(model);
    for (const consumer of this.consumers) consumer.attach();
  }

  private onConnectionLost(model: ChannelModel): void {
    if (this.model !== model) return;
    this.model = null;
    this.publisher = null;
    this.drained = null;
    this.declared.clear();
    if (!this.closed) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined || this.closed) return;
    this.reconnectAttempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.establish().catch((error: Error) => {
        this.lastError = error;
        this.scheduleReconnect();
      });
    }, this.backoff(this.reconnectAttempt));
  }

  /** Backoff doubling from 100 ms up to `reconnectMaxDelayMs`, ±20 % jitter so clients do not reconnect in step. */
  private backoff(attempt: number): number {
    const base = Math.min(this.options.reconnectMaxDelayMs, 100 * 2 ** Math.min(20, attempt - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
}

/** One message in a subscriber's hands, from its arrival until its handler returned and it was settled. */
interface InHand {
  readonly message: ConsumeMessage;
  /** The acks of the channel it came on; settling goes through them. */
  readonly acks: AmqpAckBatch;
  readonly attempt: number;
  /** Waiting for a free handler slot, running its handler, or done. */
  state: 'waiting' | 'running' | 'done';
  /** Acked, sent for retry, or given back: nothing more may be done with it on the broker. */
  settled: boolean;
  /** Its channel closed before it was settled: the broker has taken it back. */
  lost: boolean;
  /** Given back (claim timeout, lost channel) while its handler runs: it holds a slot here, no credit at the broker. */
  zombie: boolean;
  claim: NodeJS.Timeout | undefined;
}

interface ConsumerSpec {
  stream: string;
  group: string;
  queue: string;
  concurrency: number;
  onDelivery: (delivery: Delivery) => Promise<void>;
}

/**
 * One subscription: a channel of its own consuming the group queue. Handler slots are counted here; the broker's
 * prefetch is kept at `concurrency` minus the slots held by handlers whose message was already given back, so a hung
 * handler never makes the broker send this subscriber more than it can run.
 */
class AmqpConsumer {
  private readonly bus: AmqpBus;
  private readonly spec: ConsumerSpec;
  private channel: Channel | null = null;
  private acks: AmqpAckBatch | null = null;
  private consumerTag: string | null = null;
  private readonly inHand = new Set<InHand>();
  private readonly waiting: InHand[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = 0;
  private zombies = 0;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private idle: (() => void)[] = [];
  /** Channel operations (open, consume, cancel) run one after another, so consumer changes never interleave. */
  private ops: Promise<void> = Promise.resolve();
  private reattachTimer: NodeJS.Timeout | undefined;

  constructor(bus: AmqpBus, spec: ConsumerSpec) {
    this.bus = bus;
    this.spec = spec;
  }

  /** Opens the channel and starts consuming; rejects when the queue cannot be declared or consumed. */
  start(model: ChannelModel): Promise<void> {
    return this.serial(() => this.open(model));
  }

  /** Resumes consuming on the bus's current connection (after a reconnection or a lost channel). */
  attach(): void {
    const model = this.bus.current();
    if (!model || this.stopping || this.channel) return;
    this.serial(() => this.open(model)).catch(() => this.reattachLater());
  }

  /** Stops consuming, gives back what was fetched and not started, waits for running handlers, closes the channel. */
  stop(): Promise<void> {
    this.stopped ??= this.stopNow();
    return this.stopped;
  }

  /** Drops every timer at once, for a bus closing with this subscription still running. */
  shutdown(): void {
    this.stopping = true;
    clearTimeout(this.reattachTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const entry of this.inHand) clearTimeout(entry.claim);
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private async stopNow(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reattachTimer);
    await this.serial(() => this.cancel()).catch(ignore);
    // Nothing has worked on these yet: they go back at once.
    for (const entry of this.waiting.splice(0)) this.giveBack(entry);
    if (this.running - this.zombies > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    // Retries that fell back to a local delay are given back by the channel close below.
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.acks?.flushed().catch(ignore);
    const channel = this.channel;
    this.channel = null;
    this.acks = null;
    if (channel) await channel.close().catch(ignore);
    this.bus.release(this);
  }

  private serial(op: () => Promise<void>): Promise<void> {
    const run = this.ops.then(op);
    this.ops = run.catch(ignore);
    return run;
  }

  private reattachLater(): void {
    if (this.stopping || this.reattachTimer !== undefined) return;
    this.reattachTimer = setTimeout(() => {
      this.reattachTimer = undefined;
      this.attach();
    }, 1_000);
  }

  private async open(model: ChannelModel): Promise<void> {
    if (this.stopping || this.channel) return;
    const channel = await model.createChannel();
    channel.on('error', ignore);
    channel.on('close', () => this.onChannelClosed(channel));
    try {
      await this.bus.declareGroup(channel, this.spec.stream, this.spec.queue);
    } catch (error) {
      await channel.close().catch(ignore);
      throw error;
    }
    this.channel = channel;
    this.acks = new AmqpAckBatch(channel);
    await this.consume();
  }

  /** Starts a consumer with prefetch = free slots, unless one runs or no slot is free. */
  private async consume(): Promise<void> {
    const channel = this.channel;
    const acks = this.acks;
    const prefetch = this.spec.concurrency - this.zombies;
    if (!channel || !acks || this.stopping || this.consumerTag !== null || prefetch <= 0) return;
    // basic.qos without global applies to the consumers started after it on this channel.
    await channel.prefetch(prefetch);
    const { consumerTag } = await channel.consume(this.spec.queue, (message) => this.onMessage(acks, message), {
      noAck: false,
    });
    if (this.channel === channel) this.consumerTag = consumerTag;
  }

  private async cancel(): Promise<void> {
    const channel = this.channel;
    const tag = this.consumerTag;
    if (!channel || tag === null) return;
    this.consumerTag = null;
    await channel.cancel(tag);
  }

  /** Restarts the consumer so its prefetch matches the free slots again. */
  private async resize(): Promise<void> {
    await this.cancel();
    await this.consume();
  }

  private onMessage(acks: AmqpAckBatch, message: ConsumeMessage | null): void {
    const channel = acks.channel;
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted, for one): declare it again and resume.
      if (channel === this.channel && !this.stopping) {
        this.consumerTag = null;
        setTimeout(() => {
          this.serial(async () => {
            if (this.channel !== channel) return;
            await this.bus.declareGroup(channel, this.spec.stream, this.spec.queue);
            await this.consume();
          }).catch(ignore);
        }, 200);
      }
      return;
    }
    acks.track(message);
    const entry: InHand = {
      message,
      acks,
      attempt: attemptOf(message),
      state: 'waiting',
      settled: false,
      lost: false,
      zombie: false,
      claim: undefined,
    };
    entry.claim = setTimeout(() => this.onClaimTimeout(entry), this.bus.options.claimTimeoutMs);
    this.inHand.add(entry);
    this.waiting.push(entry);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.spec.concurrency && this.waiting.length > 0 && !this.stopping) {
      const entry = this.waiting.shift() as InHand;
      if (!entry.settled) this.run(entry);
    }
  }

  private run(entry: InHand): void {
    entry.state = 'running';
    this.running++;
    let handled: Promise<void>;
    try {
      handled = Promise.resolve(this.spec.onDelivery(this.deliveryOf(entry)));
    } catch (error) {
      handled = Promise.reject(error);
    }
    const finish = (): void => this.finished(entry);
    handled.then(finish, finish);
  }

  private finished(entry: InHand): void {
    entry.state = 'done';
    this.running--;
    // A handler that returned without acking or retrying gives the message back, as after a claim timeout.
    if (!entry.settled) this.giveBack(entry);
    this.inHand.delete(entry);
    if (entry.zombie) {
      this.zombies--;
      if (!this.stopping) this.serial(() => this.resize()).catch(ignore);
    }
    this.pump();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.running - this.zombies === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Returns a message to its queue now (basic.reject with requeue, which counts a failed delivery). */
  private giveBack(entry: InHand): void {
    entry.settled = true;
    clearTimeout(entry.claim);
    if (entry.state !== 'running') this.inHand.delete(entry);
    if (entry.lost) return;
    try {
      entry.acks.reject(entry.message);
    } catch {
      // The channel is gone: the broker has requeued the message already.
    }
  }

  private onClaimTimeout(entry: InHand): void {
    entry.claim = undefined;
    if (entry.settled) return;
    if (entry.state !== 'running') {
      const index = this.waiting.indexOf(entry);
      if (index >= 0) this.waiting.splice(index, 1);
      this.giveBack(entry);
      return;
    }
    // The handler hangs. Its slot stays taken until it returns, so the broker's credit shrinks by one before the
    // message goes back; otherwise the broker could hand it straight back to this stuck subscriber.
    entry.settled = true;
    entry.zombie = true;
    this.zombies++;
    this.notifyIdle();
    this.serial(async () => {
      await this.cancel().catch(ignore);
      if (!entry.lost) {
        try {
          entry.acks.reject(entry.message);
        } catch {
          // Channel gone: the broker requeued it already.
        }
      }
      await this.consume();
    }).catch(ignore);
  }

  private onChannelClosed(channel: Channel): void {
    for (const entry of this.inHand) {
      if (entry.acks.channel !== channel || entry.settled) continue;
      entry.lost = true;
      entry.settled = true;
      clearTimeout(entry.claim);
      if (entry.state === 'running') {
        entry.zombie = true;
        this.zombies++;
      } else {
        this.inHand.delete(entry);
      }
    }
    for (let i = this.waiting.length - 1; i >= 0; i--)
      if (this.waiting[i]?.acks.channel === channel) this.waiting.splice(i, 1);
    this.notifyIdle();
    if (channel !== this.channel) return;
    this.channel = null;
    this.acks = null;
    this.consumerTag = null;
    // A channel closed on a live connection (a channel error) is reopened here; after a lost connection the bus
    // resumes every subscription once it reconnected.
    if (!this.stopping) this.reattachLater();
  }

  private deliveryOf(entry: InHand): Delivery {
    const decoded = decodeMessage(
      stringHeaders(entry.message.properties.headers),
      entry.message.content.toString('utf8'),
    );
    const lostError = (cause?: unknown): GantryError =>
      new GantryError(
        'GANTRY_ERR_BUS_UNAVAILABLE',
        'the AMQP channel of this delivery closed before it was settled; the broker delivers the message again',
        {
          cause,
        },
      );
    const ack = async (): Promise<void> => {
      if (entry.lost) throw lostError();
      // Settling after the claim timeout gave the message back is a no-op, as a late ack is on any broker.
      if (entry.settled) return;
      entry.settled = true;
      clearTimeout(entry.claim);
      try {
        await entry.acks.ack(entry.message);
      } catch (error) {
        throw lostError(error);
      }
    };
    const retry = async (delayMs: number): Promise<void> => {
      if (entry.lost) throw lostError();
      if (entry.settled) return;
      entry.settled = true;
      clearTimeout(entry.claim);
      const delay = Math.max(0, delayMs);
      try {
        await this.bus.republish(this.spec.queue, entry.message, entry.attempt, delay);
      } catch {
        if (entry.lost) throw lostError();
        // The copy could not be stored: keep the original and give it back once the delay is over, so it still
        // comes back no sooner than asked.
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          try {
            entry.acks.reject(entry.message);
          } catch {
            // Channel gone: the broker requeued it already.
          }
        }, delay);
        this.timers.add(timer);
        return;
      }
      try {
        await entry.acks.ack(entry.message);
      } catch (error) {
        // The copy is stored and the original comes back too: one duplicate, never a loss.
        throw lostError(error);
      }
    };
    if (decoded.ok) return { envelope: decoded.envelope, attempt: entry.attempt, ack, retry };
    return { envelope: null, decodeError: decoded.error, raw: decoded.raw, attempt: entry.attempt, ack, retry };
  }
}

/**
 * The acks of one channel, coalesced: acks made in the same turn of the event loop go out as one `basic.ack` with
 * `multiple` for the longest run of settled delivery tags from the oldest one in hand, plus single acks for the rest.
 * A quorum queue writes every ack frame to its log, so on a busy subscription this saves the broker most of that work;
 * no ack waits longer than the current turn.
 */
class AmqpAckBatch {
  readonly channel: Channel;
  /** Delivery tags not yet settled on the broker, in delivery order (tags only grow on a channel), from `head`. */
  private order: number[] = [];
  private head = 0;
  /** Tags settled one by one (rejected, or acked out of order) that are still in `order`. */
  private readonly settled = new Set<number>();
  /** Acked by handlers, not sent yet. */
  private readonly pending = new Map<number, ConsumeMessage>();
  private batch: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | null = null;

  constructor(channel: Channel) {
    this.channel = channel;
  }

  /** Notes a delivery, in the order the channel received them. */
  track(message: ConsumeMessage): void {
    this.order.push(message.fields.deliveryTag);
  }

  /** Returns a message to its queue now; throws when the channel is closed. */
  reject(message: ConsumeMessage): void {
    this.channel.reject(message, true);
    this.settled.add(message.fields.deliveryTag);
  }

  /** Acks a message with the others of this turn; resolves once the ack is written, rejects if the channel closed. */
  ack(message: ConsumeMessage): Promise<void> {
    this.pending.set(message.fields.deliveryTag, message);
    if (!this.batch) {
      let resolve: () => void = ignore;
      let reject: (error: unknown) => void = ignore;
      const promise = new Promise<void>((ok, fail) => {
        resolve = ok;
        reject = fail;
      });
      this.batch = { promise, resolve, reject };
      setImmediate(() => this.flush());
    }
    return this.batch.promise;
  }

  /** Resolves once the acks made so far are written. */
  flushed(): Promise<void> {
    return this.batch?.promise ?? Promise.resolve();
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = null;
    if (!batch) return;
    try {
      let last: ConsumeMessage | undefined;
      while (this.head < this.order.length) {
        const tag = this.order[this.head] as number;
        if (this.settled.delete(tag)) {
          this.head++;
          continue;
        }
        const message = this.pending.get(tag);
        if (!message) break;
        this.pending.delete(tag);
        last = message;
        this.head++;
      }
      if (last) this.channel.ack(last, true);
      for (const [tag, message] of this.pending) {
        this.channel.ack(message);
        this.settled.add(tag);
      }
      this.pending.clear();
      if (this.head > 1_024) {
        this.order = this.order.slice(this.head);
        this.head = 0;
      }
      batch.resolve();
    } catch (error) {
      this.pending.clear();
      batch.reject(error);
    }
  }
}

/**
 * The attempt number of a delivery: attempts carried by a republished copy, plus one, plus the deliveries the broker
 * saw fail (`x-delivery-count` of a quorum queue; at least one when the broker flags the message as redelivered).
 */
function attemptOf(message: ConsumeMessage): number {
  const headers = message.properties.headers ?? {};
  const carried = countOf(headers[ATTEMPT_HEADER]);
  const failed = Math.max(countOf(headers['x-delivery-count']), message.fields.redelivered ? 1 : 0);
  return carried + 1 + failed;
}

function countOf(value: unknown): number {
  const count =
    typeof value === 'number'
      ? value
      : typeof value === 'string'
        ? Number(value)
        : typeof value === 'bigint'
          ? Number(value)
          : 0;
  return Number.isSafeInteger(count) && count > 0 ? count : 0;
}

/** The headers that are text (a foreign producer may send byte arrays), as the codec reads them. */
function stringHeaders(headers: MessagePropertyHeaders | undefined): Record<string, string | undefined> {
  const strings: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === 'string') strings[name] = value;
    else if (Buffer.isBuffer(value)) strings[name] = value.toString('utf8');
  }
  return strings;
}

/** True when `promise` settles before `deadline` (epoch ms). */
function settlesBefore(promise: Promise<void>, deadline: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

/** The broker did not confirm a publish before its deadline (it may still store the message). */
class ConfirmTimeout extends Error {
  constructor() {
    super('no confirm before the deadline');
  }
}

/**
 * Publishes on a confirm channel and resolves on the broker's ack; rejects on its nack, when the channel closes, or
 * with {@link ConfirmTimeout} at `deadline`.
 */
function confirmPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  properties: Options.Publish,
  deadline: number,
  onFull: (full: boolean) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ConfirmTimeout()), Math.max(0, deadline - Date.now()));
    try {
      const accepted = channel.publish(exchange, routingKey, content, properties, (error: unknown) => {
        clearTimeout(timer);
        if (error) reject(error instanceof Error ? error : new Error(String(error)));
        else resolve();
      });
      onFull(!accepted);
    } catch (error) {
      // The channel closed under us: no confirm will come.
      clearTimeout(timer);
      reject(error);
    }
  });
}

/** Runs `work` on a short-lived channel, so a channel error (a missing queue, say) stays there. */
async function withChannel<T>(model: ChannelModel, work: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await model.createChannel();
  channel.on('error', ignore);
  try {
    return await work(channel);
  } finally {
    await channel.close().catch(ignore);
  }
}

/** Messages ready in a queue; 0 when the queue does not exist. */
async function readyCount(model: ChannelModel, queue: string): Promise<number> {
  try {
    return await withChannel(model, async (channel) => (await channel.checkQueue(queue)).messageCount);
  } catch {
    return 0;
  }
}
