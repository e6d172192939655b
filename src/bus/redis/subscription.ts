import type { Redis } from 'ioredis';
import type { Delivery, Subscription } from '../bus.ts';
import type { Envelope } from '../envelope.ts';
import { decodeRedisEntry } from './codec.ts';
import type { RedisStreamsOptions } from './options.ts';
import { CLAIM_SCRIPT, RELEASE_SCRIPT, RETRY_SCRIPT, runScript } from './scripts.ts';

/** What one subscription works with; built by {@link RedisStreamsBus.subscribe}. */
export interface RedisStreamsSubscriptionInit {
  /** The bus's connection for acks, claims and retries, shared by its subscriptions (never blocked). */
  settler: Redis;
  /** A connection of this subscription's own, for the blocking reads. */
  reader: Redis;
  streamKey: string;
  retryKey: string;
  group: string;
  consumer: string;
  concurrency: number;
  options: RedisStreamsOptions;
  onDelivery: (delivery: Delivery) => Promise<void>;
  /** Creates the group again (from `0`) when the server answers NOGROUP: the stream was deleted or the group destroyed. */
  recreateGroup: () => Promise<void>;
  /** Called once the subscription has released its resources. */
  onClosed: () => void;
}

/** The reply of {@link CLAIM_SCRIPT}. */
type ClaimReply = [
  cursor: string,
  claimed: [id: string, fields: string[], deliveries: number][],
  earliest: string | null,
  now: string,
];

/** The reply of XREADGROUP: per stream, its entries (fields are null for an entry deleted while pending). */
type ReadReply = [key: string, entries: [id: string, fields: string[] | null][]][] | null;

const AUTOCLAIM_START = '0-0';
const ACK_BATCH = 1_000;

interface AckBatch {
  ids: string[];
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Collects the acks of one subscription and sends each batch as one XACK with many ids, so a burst of settled
 * messages costs one command and one round trip. The acks of a batch share its promise, which resolves once the
 * server has confirmed the XACK.
 */
class RedisAckBatcher {
  private current: AckBatch | undefined;
  /** Batches sent and not answered yet. */
  private readonly sending = new Set<Promise<void>>();

  private readonly send: (ids: string[]) => Promise<unknown>;

  constructor(send: (ids: string[]) => Promise<unknown>) {
    this.send = send;
  }

  add(id: string): Promise<void> {
    let batch = this.current;
    if (batch === undefined) {
      batch = this.open();
      const opened = batch;
      // Sent after the current I/O turn, so the acks of every handler that finishes in it share one XACK.
      setImmediate(() => this.flush(opened));
    }
    batch.ids.push(id);
    if (batch.ids.length >= ACK_BATCH) this.flush(batch);
    return batch.promise;
  }

  /** Sends the batch being collected, then resolves once every batch sent has been answered (confirmed or not). */
  async drained(): Promise<void> {
    if (this.current) this.flush(this.current);
    await Promise.all([...this.sending]);
  }

  private open(): AckBatch {
    let resolve: () => void = () => undefined;
    let reject: (error: unknown) => void = () => undefined;
    const promise = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    // Marked as handled: an ack whose caller does not await it must not become an unhandled rejection.
    promise.catch(() => undefined);
    this.current = { ids: [], promise, resolve, reject };
    return this.current;
  }

  private flush(batch: AckBatch): void {
    if (this.current !== batch) return;
    this.current = undefined;
    const sent = this.send(batch.ids).then(batch.resolve, batch.reject);
    this.sending.add(sent);
    sent.then(() => this.sending.delete(sent));
  }
}

/** One message in the hands of a handler. */
class RedisStreamsDelivery implements Delivery {
  readonly envelope: Envelope | null;
  readonly decodeError?: string;
  readonly raw?: string;
  /** True once acked or given back; later calls do nothing. */
  settled = false;
  /** Neighbours in the subscription's list of unsettled deliveries. */
  previous: RedisStreamsDelivery | undefined;
  next: RedisStreamsDelivery | undefined;

  private readonly owner: RedisStreamsSubscription;
  readonly id: string;
  readonly attempt: number;

  constructor(owner: RedisStreamsSubscription, id: string, fields: readonly string[], attempt: number) {
    this.owner = owner;
    this.id = id;
    this.attempt = attempt;
    const decoded = decodeRedisEntry(fields);
    if (decoded.ok) this.envelope = decoded.envelope;
    else {
      this.envelope = null;
      this.decodeError = decoded.error;
      this.raw = decoded.raw;
    }
  }

  ack(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.owner.ackEntry(this);
  }

  retry(delayMs: number): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.owner.retryEntry(this, delayMs);
  }
}

/**
 * One consumer of a group, fed by one loop: claim due retries and abandoned entries when their time comes, then read
 * new entries with `XREADGROUP ... COUNT <free slots> BLOCK`, on a connection of its own. At most `concurrency`
 * deliveries are unsettled at any time (one stops counting when its handler acks or retries it); the loop waits for
 * a free slot before it fetches anything.
 *
 * @remarks Internal to the Redis adapter; users get it as a {@link Subscription}.
 */
export class RedisStreamsSubscription implements Subscription {
  private readonly init: RedisStreamsSubscriptionInit;
  private readonly acks: RedisAckBatcher;
  /**
   * Deliveries handed to a handler and not settled yet (the slots in use), as a list threaded through them: adding
   * and removing one allocates nothing, where a set of ids rehashed as ids came and went.
   */
  private inHand: RedisStreamsDelivery | undefined;
  private inHandCount = 0;
  /** Handlers running, settled or not. */
  private running = 0;
  /** Resolved when `running` falls to 0, for `stop()`. */
  private idle: (() => void) | undefined;
  /** Retries being scheduled, awaited by `stop()`. */
  private readonly retries = new Set<Promise<void>>();
  private readonly sweepEveryMs: number;
  private loop: Promise<void> = Promise.resolve();
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private nextSweepAt = 0;
  /** When the earliest retry in the group's retry set is due, as the last claim saw it. */
  private nextDueAt = Number.POSITIVE_INFINITY;
  /** When the earliest retry this subscription scheduled since is due: the last claim may have run before it. */
  private localDueAt = Number.POSITIVE_INFINITY;
  private cursor = AUTOCLAIM_START;
  private readerId: number | undefined;
  private readEndsAt = 0;
  private reading = false;
  private canUnblock = true;
  /** Set by `abort()`: what a read or claim under way brings back is left pending, not handed to a handler. */
  private aborted = false;

  constructor(init: RedisStreamsSubscriptionInit) {
    this.init = init;
    // Sweeping at half the claim timeout hands an abandoned message on within 1.5 claim timeouts; 5 s at most keeps
    // a long timeout from delaying retries scheduled by a consumer that has since died.
    this.sweepEveryMs = Math.min(5_000, Math.max(50, Math.floor(init.options.claimTimeoutMs / 2)));
    this.acks = new RedisAckBatcher((ids) => init.settler.xack(init.streamKey, init.group, ...ids));
    init.reader.on('close', () => {
      this.readerId = undefined;
    });
  }

  /** Starts the fetch loop. */
  start(): void {
    this.loop = this.run();
  }

  /** Stops fetching, waits for the deliveries in hand and their acks or retries, then closes the reading connection. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /**
   * Stops at once for {@link RedisStreamsBus.close}: closes the reading connection without waiting for handlers still
   * running. Their messages stay pending and are claimed by another consumer after the claim timeout.
   */
  abort(): void {
    if (this.stopped) return;
    this.stopping = true;
    this.aborted = true;
    this.stopped = Promise.resolve();
    this.nudge();
    this.init.reader.disconnect();
    this.init.onClosed();
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.nudge();
    if (this.init.reader.status === 'ready') await this.unblock();
    // A read queued while the server is unreachable would only end with the blocking safety net: drop it.
    else this.init.reader.disconnect();
    await this.loop;
    if (this.running > 0) {
      await new Promise<void>((resolve) => {
        this.idle = resolve;
      });
    }
    while (this.retries.size > 0) await Promise.allSettled([...this.retries]);
    await this.acks.drained();
    try {
      await runScript(this.init.settler, RELEASE_SCRIPT, [this.init.streamKey], [this.init.group, this.init.consumer]);
    } catch {
      // Only tidiness: a consumer left listed in XINFO CONSUMERS holds nothing.
    }
    this.init.reader.disconnect();
    this.init.onClosed();
  }

  /**
   * Slots for new deliveries: `concurrency` less the deliveries not settled yet. Handlers that settled and wait for
   * the server's answer count too, up to a second `concurrency`, so a server slow to confirm acks slows the reads.
   */
  private free(): number {
    const { concurrency } = this.init;
    return Math.min(concurrency - this.inHandCount, 2 * concurrency - this.running);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.free() <= 0) {
        await this.pause(Number.POSITIVE_INFINITY);
        continue;
      }
      try {
        const now = Date.now();
        if (now >= this.nextWake()) await this.claim(now >= this.nextSweepAt);
        if (!this.stopping && this.free() > 0) await this.read();
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        if (error instanceof Error && error.message.startsWith('NOGROUP')) {
          // On failure the next turn meets NOGROUP again and tries again, after the pause below.
          await this.init.recreateGroup().catch(() => undefined);
        }
        // Back off while the server is unreachable or refusing, rather than spinning on the error.
        failures++;
        await this.pause(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /** Waits until woken (a slot freed, a retry scheduled, stop) or `ms` passed. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => this.nudge(), ms) : undefined;
      this.wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private nudge(): void {
    this.wake?.();
  }

  /** When the loop next has claiming to do: a sweep, or a retry coming due. */
  private nextWake(): number {
    return Math.min(this.nextSweepAt, this.nextDueAt, this.localDueAt);
  }

  private async claim(sweep: boolean): Promise<void> {
    const { settler, streamKey, retryKey, group, consumer, options } = this.init;
    const started = Date.now();
    const reply = (await runScript(
      settler,
      CLAIM_SCRIPT,
      [streamKey, retryKey],
      [group, consumer, this.free(), sweep ? 1 : 0, options.claimTimeoutMs, this.cursor],
    )) as ClaimReply;
    const [cursor, claimed, earliest, serverNow] = reply;
    const now = Date.now();
    if (sweep) {
      this.cursor = cursor;
      // A cursor other than 0-0 means the pending list has more to look at: go on at the next turn of the loop.
      this.nextSweepAt = cursor === AUTOCLAIM_START ? now + this.sweepEveryMs : now;
    }
    // The due time is on the server's clock: keep only its distance from the server's now.
    this.nextDueAt =
      earliest === null ? Number.POSITIVE_INFINITY : now + Math.max(0, Number(earliest) - Number(serverNow));
    // Retries scheduled here before the script ran are in its view; later ones still need their own wake-up.
    if (this.localDueAt <= started) this.localDueAt = Number.POSITIVE_INFINITY;
    if (this.aborted) return;
    for (const [id, fields, deliveries] of claimed) {
      // The sweep can take back an entry this very subscription still holds (a handler slower than the claim
      // timeout): the first handler keeps it, and no second copy runs beside it.
      if (!this.holds(id)) this.deliver(id, fields, deliveries);
    }
  }

  private async read(): Promise<void> {
    const { reader, streamKey, group, consumer, options } = this.init;
    const count = this.free();
    // Block no longer than the next claim is due, so a retry or an abandoned message is not held up by a quiet stream.
    const until = this.nextWake() - Date.now();
    const block = Math.max(1, Math.min(options.blockMs, until));
    if (this.readerId === undefined && this.canUnblock) {
      try {
        this.readerId = await reader.client('ID');
      } catch (error) {
        // Denied by ACLs: read on, without the early end of a blocked read that the id is for.
        if (!(error instanceof Error && error.name === 'ReplyError')) throw error;
        this.canUnblock = false;
      }
    }
    // stop() may have come while the id was fetched; it found no read to end, so start none.
    if (this.stopping) return;
    this.reading = true;
    this.readEndsAt = Date.now() + block;
    let reply: ReadReply;
    try {
      reply = (await reader.xreadgroup(
        'GROUP',
        group,
        consumer,
        'COUNT',
        count,
        'BLOCK',
        block,
        'STREAMS',
        streamKey,
        '>',
      )) as ReadReply;
    } finally {
      this.reading = false;
    }
    if (!reply || this.aborted) return;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) if (fields) this.deliver(id, fields, 1);
    }
  }

  /** Ends the blocking read now (as if it timed out, so no entry is lost), when the server lets us. */
  private async unblock(): Promise<void> {
    if (!this.reading || this.readerId === undefined || !this.canUnblock) return;
    try {
      await this.init.settler.client('UNBLOCK', this.readerId);
    } catch (error) {
      // Refused (ACLs on managed servers deny CLIENT UNBLOCK): stop asking, reads end by their BLOCK timeout instead.
      // Any other failure (the connection is down) says nothing about the next time.
      if (error instanceof Error && error.name === 'ReplyError') this.canUnblock = false;
    }
  }

  /** Whether a delivery of entry `id` is in a handler's hands, unsettled. Only claims ask, and they are rare. */
  private holds(id: string): boolean {
    for (let delivery = this.inHand; delivery !== undefined; delivery = delivery.next) {
      if (delivery.id === id) return true;
    }
    return false;
  }

  private deliver(id: string, fields: string[], attempt: number): void {
    const delivery = new RedisStreamsDelivery(this, id, fields, attempt);
    delivery.next = this.inHand;
    if (this.inHand !== undefined) this.inHand.previous = delivery;
    this.inHand = delivery;
    this.inHandCount++;
    this.running++;
    let handled: Promise<void>;
    try {
      handled = this.init.onDelivery(delivery);
    } catch (error) {
      // A handler that throws before returning its promise is a failed handler like any other.
      handled = Promise.reject(error);
    }
    // One callback for both outcomes: the handler's result does not matter here, only that it is over.
    const finish = (): void => this.finish(delivery);
    handled.then(finish, finish);
  }

  private finish(delivery: RedisStreamsDelivery): void {
    // A handler that returned without settling gives the message back at once, as the in-memory bus does.
    if (!delivery.settled) {
      // If that fails the entry stays pending, and the claim sweep hands it on after the claim timeout.
      delivery.retry(0).catch(() => undefined);
    }
    this.running--;
    if (this.running === 0) this.idle?.();
    this.nudge();
  }

  /**
   * Frees the slot of a delivery once it is settled. The slot is not held until the server confirms the ack: the
   * handler has nothing left to do but wait for that answer, and holding the slot through that round trip would halve
   * what a subscription can fetch per round trip.
   */
  private release(delivery: RedisStreamsDelivery): void {
    const { previous, next } = delivery;
    if (previous === undefined) this.inHand = next;
    else previous.next = next;
    if (next !== undefined) next.previous = previous;
    delivery.previous = undefined;
    delivery.next = undefined;
    this.inHandCount--;
    this.nudge();
  }

  /** XACK, in the batch of the current I/O turn. */
  ackEntry(delivery: RedisStreamsDelivery): Promise<void> {
    const acked = this.acks.add(delivery.id);
    this.release(delivery);
    return acked;
  }

  /** Schedules the entry's redelivery after `delayMs`, in the group's delayed-retry set. */
  retryEntry(delivery: RedisStreamsDelivery, delayMs: number): Promise<void> {
    this.release(delivery);
    const scheduled = this.scheduleRetry(delivery.id, delayMs);
    this.retries.add(scheduled);
    const forget = (): void => {
      this.retries.delete(scheduled);
    };
    scheduled.then(forget, forget);
    return scheduled;
  }

  private async scheduleRetry(id: string, delayMs: number): Promise<void> {
    const { settler, streamKey, retryKey, group, consumer } = this.init;
    const delay = Math.max(0, Math.round(delayMs));
    const scheduled = await runScript(settler, RETRY_SCRIPT, [streamKey, retryKey], [group, consumer, id, delay]);
    if (scheduled !== 1) return;
    this.localDueAt = Math.min(this.localDueAt, Date.now() + delay);
    // The loop may be blocked in a read that ends after the retry is due: end it early.
    if (this.reading && this.readEndsAt > this.localDueAt + 5) await this.unblock();
    this.nudge();
  }
}
