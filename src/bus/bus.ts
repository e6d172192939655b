import type { Envelope } from './envelope.ts';

/** The state of one dependency as readiness reports it. */
export interface CheckResult {
  ok: boolean;
  detail?: string;
}

/** One delivery of a message to one consumer of a group. */
export interface Delivery {
  /**
   * The decoded message, or `null` when the bytes could not be decoded as an envelope (a poison message): the
   * consumer runner dead-letters it with `decodeError` as the reason.
   */
  readonly envelope: Envelope | null;
  readonly decodeError?: string;
  /** The raw payload as received, kept for dead letters of poison messages. */
  readonly raw?: string;
  /** 1 on first delivery, counted by the broker where it can (Redis delivery count, JetStream, AMQP header). */
  readonly attempt: number;
  /** Settles the message as done: it is never delivered to this group again. */
  ack(): Promise<void>;
  /** Gives the message back to be delivered again (to any consumer of the group) after `delayMs`. */
  retry(delayMs: number): Promise<void>;
}

/** Options of {@link Bus.subscribe}. */
export interface SubscribeOptions {
  /** Most messages handled at once by this subscriber; the adapter fetches no more than this ahead. */
  concurrency: number;
  /** A name unique to this process within the group (for brokers that track consumers, like Redis). */
  consumerName: string;
}

/** A running subscription. */
export interface Subscription {
  /** Stops fetching, waits for deliveries in hand to settle, then releases the broker's resources. */
  stop(): Promise<void>;
}

/** Figures about one stream and group, for metrics and `gantry streams`. */
export interface StreamStats {
  stream: string;
  group?: string;
  /** Messages not yet acknowledged by the group (pending plus not yet delivered), when the broker can tell. */
  lag?: number;
}

/**
 * The contract every message broker adapter fulfils. A host owns one bus; services never talk to a broker directly.
 *
 * Guarantees, the same on every adapter:
 * - `publish` resolves only once the broker holds the message durably (for durable adapters).
 * - Every group subscribed to a stream gets every message published after the group was first subscribed.
 * - Within a group, each message goes to one subscriber at a time; it is delivered again until `ack()` is called.
 * - A message whose handler never settles it (process killed) is delivered again after the adapter's claim timeout.
 *
 * @remarks Left out on purpose: retry policy and dead-lettering (the consumer runner decides from `attempt`, so all
 * adapters behave the same), schema validation, and exactly-once (the inbox gives effectively-once on top).
 */
export interface Bus {
  /** The adapter's name (`memory`, `postgres`, `redis`, `nats`, `amqp`, `kafka`). */
  readonly kind: string;
  /** True when the bus keeps messages only in this process (refused in prod unless allowed). */
  readonly embedded: boolean;
  /** Stores a message on a stream; resolves when it is durably accepted. */
  publish(stream: string, envelope: Envelope): Promise<void>;
  /** Starts delivering the messages of `stream` to `group`, calling `onDelivery` for each. */
  subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription>;
  /** Lag and counts the broker can tell. */
  stats(stream: string, group?: string): Promise<StreamStats>;
  check(): Promise<CheckResult>;
  /** Closes connections. Subscriptions must have been stopped first. */
  close(): Promise<void>;
}
