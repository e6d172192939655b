import type { ChainableCommander, Redis } from 'ioredis';
import { EVENT_FIELD } from './codec.ts';

/**
 * The publishes to one stream in one batch: they share a promise, settled once the pipeline's replies are in. Not
 * one promise per publish: a burst of emits to a stream then costs one promise, not one each with its two settle
 * functions.
 */
class StreamPublishes {
  readonly stream: string;
  readonly settled: Promise<void>;
  /** The first error the server gave an XADD of this stream, if any. */
  error: unknown;
  private resolve: () => void = () => undefined;
  private reject: (error: unknown) => void = () => undefined;

  constructor(stream: string) {
    this.stream = stream;
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  settle(failure: (stream: string, error: unknown) => Error): void {
    if (this.error === undefined) this.resolve();
    else this.reject(failure(this.stream, this.error));
  }

  fail(error: Error): void {
    this.reject(error);
  }
}

/** The publishes of one event-loop turn: one pipeline, one deadline, one {@link StreamPublishes} per stream. */
interface PublishBatch {
  pipeline: ChainableCommander;
  byKey: Map<string, StreamPublishes>;
  /** The publishes each XADD of the pipeline belongs to, in pipeline order. */
  owners: StreamPublishes[];
  timer: NodeJS.Timeout | undefined;
  /** True once sent: later publishes go to a new batch. */
  sent: boolean;
}

/** Most XADDs in one pipeline: a longer burst goes out in several writes rather than one huge string. */
const MAX_BATCH = 1_000;

/**
 * Sends the XADDs of one event-loop turn as one ioredis pipeline (one write), with one timer bounding how long they
 * wait for their replies, reconnection included.
 *
 * This is what ioredis' auto-pipelining does, minus its per-command layer: auto-pipelining runs each command through
 * the client's command function and then the pipeline's, adds a promise, a callback and a `process.nextTick` per
 * command, and ioredis' `commandTimeout` a timer per command. That was about a third of the client's CPU per message
 * in `bench/bus-redis.ts`. The pipeline is the same ioredis `Pipeline` auto-pipelining uses, so commands queue
 * offline and are sent on reconnection exactly as before.
 *
 * A publish past its deadline is rejected with the error ioredis gives (`Command timed out`); as with ioredis, the
 * command itself stays queued and may still run once the connection is back.
 */
export class RedisPublisher {
  private current: PublishBatch | undefined;
  /** The `MAXLEN ~` cap, as a string so ioredis has nothing to convert per command; undefined when `maxLen` is 0. */
  private readonly maxLen: string | undefined;

  private readonly client: Redis;
  private readonly timeoutMs: number;
  private readonly failure: (stream: string, error: unknown) => Error;

  /**
   * @param client - the connection to publish on.
   * @param maxLen - the approximate cap of every stream (`MAXLEN ~`); 0 keeps everything.
   * @param timeoutMs - how long a publish may wait for its reply.
   * @param failure - the error a failed publish rejects with, from the stream and the client's error (a
   *   `ReplyError` from the server, the connection's, or `Command timed out`).
   */
  constructor(client: Redis, maxLen: number, timeoutMs: number, failure: (stream: string, error: unknown) => Error) {
    this.client = client;
    this.timeoutMs = timeoutMs;
    this.failure = failure;
    this.maxLen = maxLen > 0 ? String(maxLen) : undefined;
  }

  /**
   * Appends the entry `event <event>` (see encodeRedisEntry) to `key`, the key of `stream`; resolves once the server
   * has it, rejects with the `failure` of the error otherwise.
   *
   * The publishes to one stream sent together settle together: if the server refuses one of their XADDs, all of them
   * reject, though the others may be stored. A refusal is nearly always about the key (WRONGTYPE) or the server
   * (OOM, READONLY), so it hits them all anyway; a caller that publishes again can only duplicate a message, which
   * at-least-once delivery allows, never lose one. Publishes to other streams settle on their own.
   */
  xadd(stream: string, key: string, event: string): Promise<void> {
    let batch = this.current;
    if (batch === undefined) batch = this.open();
    // Arguments written out rather than spread from arrays: no array to build per publish.
    if (this.maxLen === undefined) batch.pipeline.xadd(key, '*', EVENT_FIELD, event);
    else batch.pipeline.xadd(key, 'MAXLEN', '~', this.maxLen, '*', EVENT_FIELD, event);
    let publishes = batch.byKey.get(key);
    if (publishes === undefined) {
      publishes = new StreamPublishes(stream);
      batch.byKey.set(key, publishes);
    }
    batch.owners.push(publishes);
    if (batch.owners.length >= MAX_BATCH) this.send(batch);
    return publishes.settled;
  }

  /** Sends the batch being collected now rather than at the end of the turn (before the connection is closed). */
  flush(): void {
    if (this.current !== undefined) this.send(this.current);
  }

  private open(): PublishBatch {
    const batch: PublishBatch = {
      pipeline: this.client.pipeline(),
      byKey: new Map(),
      owners: [],
      timer: undefined,
      sent: false,
    };
    batch.timer = setTimeout(() => this.fail(batch, new Error('Command timed out')), this.timeoutMs);
    this.current = batch;
    // Sent after the current I/O turn, as auto-pipelining does, so concurrent publishes share one write.
    setImmediate(() => this.send(batch));
    return batch;
  }

  private send(batch: PublishBatch): void {
    if (batch.sent) return;
    batch.sent = true;
    if (this.current === batch) this.current = undefined;
    batch.pipeline.exec().then(
      (results) => {
        clearTimeout(batch.timer);
        // Only a transaction aborted by WATCH answers null; there is none here, but fail rather than resolve then.
        if (results === null) return this.fail(batch, new Error('pipeline answered null'));
        const { owners } = batch;
        for (let i = 0; i < owners.length; i++) {
          const error = results[i]?.[0];
          if (error) (owners[i] as StreamPublishes).error ??= error;
        }
        for (const publishes of batch.byKey.values()) publishes.settle(this.failure);
      },
      (error: unknown) => {
        clearTimeout(batch.timer);
        this.fail(batch, error);
      },
    );
  }

  /** Rejects every publish of `batch`; those already settled are left as they are (a settled promise ignores it). */
  private fail(batch: PublishBatch, error: unknown): void {
    for (const publishes of batch.byKey.values()) publishes.fail(this.failure(publishes.stream, error));
  }
}
