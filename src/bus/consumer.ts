import { toGantryError, type WireError } from '../errors/gantry-error.ts';
import { validatorFor } from '../schema/validate.ts';
import type { ConsumerDef } from '../service/service.ts';
import type { Bus, Delivery, Subscription } from './bus.ts';
import type { CounterBook } from './counters.ts';
import { createEnvelope, type Envelope } from './envelope.ts';

/** The body of a message in a dead-letter stream `<stream>.dlq`. */
export interface DeadLetter {
  stream: string;
  group: string;
  /** Why the message was given up on. */
  reason: string;
  error: WireError;
  attempts: number;
  /** The original envelope, or null for a message that could not be decoded (then `raw` holds its bytes). */
  original: Envelope | null;
  raw?: string;
}

/** What the consumer runner needs from the host. */
export interface ConsumerRunnerDeps {
  bus: Bus;
  counters: CounterBook;
  consumerName: string;
  /**
   * Largest message accepted, in bytes of its JSON data; larger ones are dead-lettered unhandled. 0 or absent: no
   * limit.
   */
  maxMessageBytes?: number;
  /** Runs the handler as an event (logging, timeout, hooks); rejects when it failed. */
  handle: (consumer: ConsumerDef, envelope: Envelope, attempt: number) => Promise<void>;
  onDeadLetter: (letter: DeadLetter) => void;
  onSettleError: (error: unknown) => void;
}

/** The default of {@link ConsumerRunnerDeps.maxMessageBytes}: 1 MiB, the same as the default HTTP body limit. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;
const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_BACKOFF_MS = 200;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

/**
 * Subscribes one consumer and applies the delivery rules every adapter shares: undecodable or invalid messages go
 * straight to `<stream>.dlq`; a failed handler is retried with exponential backoff and full jitter until
 * `maxAttempts`, then dead-lettered; the message is acked only after the handler succeeded.
 */
export async function startConsumer(consumer: ConsumerDef, deps: ConsumerRunnerDeps): Promise<Subscription> {
  const { stream, group, options } = consumer;
  const counters = deps.counters.of(stream.name, group);
  const validator = validatorFor(stream.schema);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const maxMessageBytes = deps.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;

  const deadLetter = async (delivery: Delivery, reason: string, error: WireError): Promise<void> => {
    const letter: DeadLetter = {
      stream: stream.name,
      group,
      reason,
      error,
      attempts: delivery.attempt,
      original: delivery.envelope,
    };
    if (delivery.raw !== undefined && delivery.envelope === null) letter.raw = delivery.raw;
    const envelope = createEnvelope({
      stream: `${stream.name}.dlq`,
      data: letter,
      source: `gantry@${group}`,
      ...(delivery.envelope?.subject !== undefined ? { key: delivery.envelope.subject } : {}),
    });
    // Publish the dead letter before acking, so a crash in between redelivers rather than loses the message.
    await deps.bus.publish(`${stream.name}.dlq`, envelope);
    await delivery.ack();
    counters.deadLettered++;
    deps.onDeadLetter(letter);
  };

  const onDelivery = async (delivery: Delivery): Promise<void> => {
    counters.delivered++;
    try {
      const envelope = delivery.envelope;
      if (envelope === null) {
        const reason = `undecodable message: ${delivery.decodeError ?? 'unknown format'}`;
        await deadLetter(delivery, reason, {
          code: 'GANTRY_ERR_STREAM_INVALID_MESSAGE',
          message: reason,
          retryable: false,
        });
        return;
      }
      // Never trust the envelope: a message on this stream must say it is of this stream, and be of a sane size,
      // before its data is validated or handled.
      if (envelope.type !== stream.name) {
        const reason = `message of type '${envelope.type}' arrived on stream '${stream.name}'`;
        await deadLetter(delivery, reason, { code: 'GANTRY_ERR_STREAM_WRONG_TYPE', message: reason, retryable: false });
        return;
      }
      const size = maxMessageBytes > 0 ? messageBytes(delivery, envelope.data) : 0;
      if (size > maxMessageBytes) {
        const reason = `message of ${size} bytes is larger than the ${maxMessageBytes} allowed`;
        await deadLetter(delivery, reason, {
          code: 'GANTRY_ERR_STREAM_MESSAGE_TOO_LARGE',
          message: reason,
          retryable: false,
          details: { bytes: size, maxBytes: maxMessageBytes },
        });
        return;
      }
      if (!validator.check(envelope.data)) {
        const problems = validator.problems(envelope.data);
        const reason = `message does not match the schema of '${stream.name}'`;
        await deadLetter(delivery, reason, {
          code: 'GANTRY_ERR_STREAM_INVALID_MESSAGE',
          message: reason,
          retryable: false,
          details: problems,
        });
        return;
      }
      try {
        await deps.handle(consumer, envelope, delivery.attempt);
      } catch (thrown) {
        const error = toGantryError(thrown);
        if (delivery.attempt >= maxAttempts) {
          await deadLetter(
            delivery,
            `failed ${delivery.attempt} time(s): ${error.message}`,
            error.toWire(consumer.name),
          );
        } else {
          counters.retried++;
          await delivery.retry(backoff(delivery.attempt, options.backoffMs, options.maxBackoffMs));
        }
        return;
      }
      await delivery.ack();
      counters.acked++;
    } catch (error) {
      // Settling failed (broker gone): leave the message unacked; the broker redelivers it.
      deps.onSettleError(error);
    }
  };

  return deps.bus.subscribe(stream.name, group, onDelivery, {
    concurrency: options.concurrency ?? 8,
    consumerName: deps.consumerName,
  });
}

/**
 * The size of a message: its raw payload when the adapter kept it, else its data encoded as JSON (adapters hand over
 * decoded envelopes, so the data is measured again; a few microseconds for a typical message).
 */
function messageBytes(delivery: Delivery, data: unknown): number {
  if (delivery.raw !== undefined) return Buffer.byteLength(delivery.raw);
  return Buffer.byteLength(JSON.stringify(data) ?? '');
}

/** Exponential backoff with full jitter: a random delay in [base·2^(attempt−1) / 2, base·2^(attempt−1)], capped. */
export function backoff(attempt: number, baseMs = DEFAULT_BACKOFF_MS, maxMs = DEFAULT_MAX_BACKOFF_MS): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
