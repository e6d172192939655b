import type { Redis } from 'ioredis';
import { APPEND_SCRIPT } from './scripts.ts';

/**
 * The publishes to one stream in one batch: appended by one script call, settled together by one promise. Not one
 * promise per publish: a burst of emits to a stream then costs one promise, not one each with its settle functions.
 */
class StreamPublishes {
  readonly stream: string;
  readonly key: string;
  /** The `event` field of each entry, in publish order. */
  readonly events: string[] = [];
  readonly settled: Promise<void>;
  private resolve: () => void = () => undefined;
  private reject: (error: unknown) => void = () => undefined;

  constructor(stream: string, key: string) {
    this.stream = stream;
    this.key = key;
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  succeed(): void {
    this.resolve();
  }

  fail(error: Error): void {
    this.reject(error);
  }
}

/** The publishes of one event-loop turn: one write, one deadline, one {@link StreamPublishes} per stream. */
interface PublishBatch {
  byKey: Map<string, StreamPublishes>;
  count: number;
  /** UTF-16 length of the events so far: a bound on the batch's size that costs nothing to keep. */
  chars: number;
  timer: NodeJS.Timeout | undefined;
  /** True once sent: later publishes go to a new batch. */
  sent: boolean;
}

/** Most entries in one batch: a longer burst goes out in several writes rather than one huge string. */
const MAX_BATCH = 1_000;
/**
 * Most characters of events in one batch. A script runs alone on the server: this bounds how long one batch of large
 * messages holds it (about two milliseconds for a full one), while a batch of typical messages is bounded by the count.
 */
const MAX_BATCH_CHARS = 1_048_576;

/**
 * Sends the publishes of one event-loop turn in one write: per stream, one call of {@link APPEND_SCRIPT} with every
 * entry, all in one ioredis pipeline, with one timer bounding how long they wait for their replies, reconnection
 * included.
 *
 * Why a script rather than an XADD per publish: the server answers a call once, not once per entry, and the client
 * builds, writes and reads back one command. In `bench/bus-redis.ts`, ioredis' work per XADD (building the command,
 * writing it, decoding its reply, the pipeline's bookkeeping) was a fifth of the client's CPU per message. The
 * pipeline is the same ioredis `Pipeline` auto-pipelining uses, so commands queue offline and are sent on
 * reconnection exactly as before. The script is sent in full (EVAL), not by its digest: a server that lost its script
 * cache (a restart, a failover) would refuse a digest, and sending the call again could reorder a stream.
 *
 * A publish past its deadline is rejected with the error ioredis gives (`Command timed out`); as with ioredis, the
 * command itself stays queued and may still run once the connection is back.
 */
export class RedisPublisher {
  private current: PublishBatch | undefined;
  /** The `MAXLEN ~` cap as the script's first argument; '0' keeps everything. */
  private readonly maxLen: string;

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
    this.maxLen = String(Math.max(0, maxLen));
  }

  /**
   * Appends the entry `event <event>` (see encodeRedisEntry) to `key`, the key of `stream`; resolves once the server
   * has it, rejects with the `failure` of the error otherwise.
   *
   * The publishes to one stream sent together settle together: if the server refuses one of their entries, all of
   * them reject, though those before it are stored. A refusal is nearly always about the key (WRONGTYPE) or the
   * server (OOM, READONLY), so it hits them all anyway; a caller that publishes again can only duplicate a message,
   * which at-least-once delivery allows, never lose one. Publishes to other streams settle on their own.
   */
  xadd(stream: string, key: string, event: string): Promise<void> {
    let batch = this.current;
    if (batch === undefined) batch = this.open();
    let publishes = batch.byKey.get(key);
    if (publishes === undefined) {
      publishes = new StreamPublishes(stream, key);
      batch.byKey.set(key, publishes);
    }
    publishes.events.push(event);
    batch.count++;
    batch.chars += event.length;
    if (batch.count >= MAX_BATCH || batch.chars >= MAX_BATCH_CHARS) this.send(batch);
    return publishes.settled;
  }

  /** Sends the batch being collected now rather than at the end of the turn (before the connection is closed). */
  flush(): void {
    if (this.current !== undefined) this.send(this.current);
  }

  private open(): PublishBatch {
    const batch: PublishBatch = { byKey: new Map(), count: 0, chars: 0, timer: undefined, sent: false };
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
    const pipeline = this.client.pipeline();
    for (const publishes of batch.byKey.values()) {
      pipeline.eval(APPEND_SCRIPT.lua, 1, publishes.key, this.maxLen, ...publishes.events);
    }
    pipeline.exec().then(
      (results) => {
        clearTimeout(batch.timer);
        // Only a transaction aborted by WATCH answers null; there is none here, but fail rather than resolve then.
        if (results === null) return this.fail(batch, new Error('pipeline answered null'));
        let i = 0;
        for (const publishes of batch.byKey.values()) {
          const error = results[i++]?.[0];
          if (error) publishes.fail(this.failure(publishes.stream, error));
          else publishes.succeed();
        }
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
