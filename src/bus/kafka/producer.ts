import type { Producer } from '@platformatic/kafka';
import type { KafkaRecordBytes } from './codec.ts';

/** A record on its way to a topic; `partition` set only when the adapter picks it (claim hand-over). */
export interface OutgoingRecord extends KafkaRecordBytes {
  topic: string;
  partition?: number;
}

interface Queued {
  record: OutgoingRecord;
  size: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

// Kafka refuses a record batch above the broker's message.max.bytes (1 MiB by default); a request carries one batch
// per partition, so staying under it for the whole request is always safe.
const MAX_BATCH_BYTES = 900_000;
const MAX_BATCH_MESSAGES = 1_000;
// acks = all: the leader answers once every in-sync replica holds the record ("durably accepted").
const ACKS_ALL = -1;

/**
 * Sends records with one produce request in flight at a time, batching whatever arrived meanwhile. Concurrent
 * publishers thus share requests (the throughput of client-side batching) while a lone publisher waits no longer than
 * one round trip. With a single request in flight, a retried request can never overtake a later one, so records of
 * one key keep their order without the idempotent producer.
 */
export class KafkaPublisher {
  readonly #producer: Producer;
  #queue: Queued[] = [];
  #sending = false;
  #scheduled = false;
  #drained: (() => void)[] = [];

  constructor(producer: Producer) {
    this.#producer = producer;
  }

  /** Resolves once the broker acknowledged the record with acks = all; rejects with the client's error. */
  send(record: OutgoingRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      let size = record.value.length + (record.key?.length ?? 0);
      for (const [name, value] of record.headers) size += name.length + value.length;
      this.#queue.push({ record, size, resolve, reject });
      this.#schedule();
    });
  }

  /** Waits until every record given to {@link send} was answered. */
  async flush(): Promise<void> {
    if (!this.#sending && !this.#scheduled && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  #schedule(): void {
    if (this.#sending || this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate rather than a microtask: publishes issued in the same turn of the event loop join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#takeBatch();
        try {
          await this.#producer.send({
            messages: batch.map(({ record }) => ({
              topic: record.topic,
              value: record.value,
              headers: record.headers,
              ...(record.key !== undefined ? { key: record.key } : {}),
              ...(record.partition !== undefined ? { partition: record.partition } : {}),
            })),
            acks: ACKS_ALL,
          });
          for (const queued of batch) queued.resolve();
        } catch (error) {
          for (const queued of batch) queued.reject(error);
        }
      }
    } finally {
      this.#sending = false;
      for (const resolve of this.#drained.splice(0)) resolve();
    }
  }

  #takeBatch(): Queued[] {
    let bytes = 0;
    let count = 0;
    for (const queued of this.#queue) {
      if (count > 0 && (bytes + queued.size > MAX_BATCH_BYTES || count >= MAX_BATCH_MESSAGES)) break;
      bytes += queued.size;
      count++;
    }
    return this.#queue.splice(0, count);
  }
}
