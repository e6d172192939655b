import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import type { Envelope } from '../envelope.ts';
import type { PostgresBusClient } from './client.ts';
import { type ClaimedRow, decodeRow, encodeRow, type MessageRow } from './codec.ts';
import { type PostgresBusOptions, postgresBusOptions } from './options.ts';
import { type BusStatements, busSchemaSql, busStatements, JOINED_SEPARATOR } from './schema.ts';

/** Options of {@link PostgresLogBus} beyond those of the URL. */
export interface PostgresLogBusOptions extends Partial<PostgresBusOptions> {
  /**
   * Told about failures that have no caller to reject: a claim that failed (retried by itself), an idle connection
   * dropped, the listener reconnecting, a cleanup that failed, a handler that threw. Default: ignored.
   */
  onError?: (error: Error) => void;
}

/**
 * The publishes that go in one statement, as the columns it takes. They settle together, so they share one promise
 * rather than each holding its own.
 */
interface PublishBatch {
  streams: string[];
  keys: (string | null)[];
  headers: string[];
  bodies: string[];
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Most messages one publish statement carries; more wait for the next statement. */
const PUBLISH_BATCH = 1_000;
/** Most acks one DELETE carries. */
const ACK_BATCH = 1_000;
/** DELETEs of acks one subscription runs at once. */
const MAX_ACKS_IN_FLIGHT = 2;
/** Most delay before a PGlite consumer claims after a notification (see `notified`). */
const EMBEDDED_WAKE_JITTER_MS = 3;
/** Claims one subscription runs at once. */
const MAX_CLAIMS_IN_FLIGHT = 2;
/** Messages one cleanup statement deletes at most, so it never holds locks for long. */
const CLEANUP_BATCH = 5_000;

/**
 * The bus on PostgreSQL, as a log with consumer groups: a `messages` table in global order, and one `deliveries`
 * row per message and group until that group acknowledges it. Works the same on a PostgreSQL server (`pg` pool) and
 * on embedded PGlite, through {@link PostgresBusClient}.
 *
 * - `publish` inserts the message and its deliveries in one statement (see `postgresPublishStatement` for running
 *   it in your own transaction) and resolves once PostgreSQL committed it. Publishes made while one is being written
 *   go together in the next statement, so concurrent publishers share commits. When the server cannot be reached,
 *   `publish` retries for `publishRetryMs`, then rejects with the driver's error; a retry after a lost reply may
 *   store the message twice (at-least-once; the inbox deduplicates by envelope id).
 * - `subscribe` claims deliveries with `FOR UPDATE SKIP LOCKED`, so the consumers of a group share the work; each
 *   claim counts an attempt and leases the message for `claimTimeoutMs`, after which any consumer may claim it again.
 *   It never holds more than `concurrency` unsettled messages, wakes on NOTIFY, and polls every `pollIntervalMs` as a
 *   fallback.
 *
 * @remarks Order: messages come out in id order, so one publisher's messages (and one key's) reach a consumer of
 * concurrency 1 in the order published. Across publishers, ids follow insertion, not commit, so a message may be
 * claimed before another one with a lower id whose transaction commits later. Nothing holds back a key's later
 * messages while an earlier one is being retried or is in another consumer's hands.
 * @example
 * const bus = new PostgresLogBus(pgPoolBusClient(pool, { connectListener: () => new Client(url) }), { claimTimeoutMs: 10_000 });
 * await bus.publish('orders.placed', envelope);
 */
export class PostgresLogBus implements Bus {
  readonly kind = 'postgres';
  readonly embedded: boolean;
  /** The options in force, defaults filled in. */
  readonly options: PostgresBusOptions;
  private readonly client: PostgresBusClient;
  private readonly sql: BusStatements;
  private readonly onError: (error: Error) => void;
  private ready: Promise<void> | undefined;
  private closed = false;
  /** Batches waiting for their statement, oldest first; publishes join the last one until it is full. */
  private readonly publishQueue: PublishBatch[] = [];
  private publishing: Promise<void> | undefined;
  private readonly consumers = new Set<GroupConsumer>();
  private listening: Promise<unknown> | undefined;
  private readonly cleanupTimer: NodeJS.Timeout | undefined;

  /**
   * @param client The connection, from `pgPoolBusClient` or `pgliteBusClient`; closed by {@link close}.
   * @param options The URL options (see {@link PostgresBusOptions}) and an error listener.
   * @throws GantryError `GANTRY_ERR_CONFIG_INVALID` for an option out of range.
   */
  constructor(client: PostgresBusClient, options: PostgresLogBusOptions = {}) {
    const { onError, ...rest } = options;
    this.client = client;
    this.embedded = client.embedded;
    this.options = postgresBusOptions(rest);
    this.sql = busStatements(this.options.schema);
    this.onError = onError ?? (() => undefined);
    if (this.options.cleanupIntervalMs > 0) {
      this.cleanupTimer = setInterval(() => {
        this.cleanup().catch((error: Error) => this.onError(error));
      }, this.options.cleanupIntervalMs);
      // Housekeeping alone must not keep a process alive.
      this.cleanupTimer.unref();
    }
  }

  /**
   * Stores a message; resolves once committed. Rejects with `GANTRY_ERR_BUS_CLOSED` after {@link close}, with
   * `GANTRY_ERR_STREAM_INVALID_MESSAGE` for a message holding a NUL character, and with the driver's error when the
   * server stayed unreachable for `publishRetryMs`.
   */
  publish(stream: string, envelope: Envelope): Promise<void> {
    if (this.closed) return Promise.reject(closedError(`cannot publish to ${stream}`));
    let row: MessageRow;
    try {
      row = encodeRow(stream, envelope);
    } catch (error) {
      return Promise.reject(error);
    }
    let batch = this.publishQueue[this.publishQueue.length - 1];
    if (batch === undefined || batch.streams.length >= PUBLISH_BATCH) {
      batch = publishBatch();
      this.publishQueue.push(batch);
    }
    batch.streams.push(row.stream);
    batch.keys.push(row.key);
    batch.headers.push(row.headers);
    batch.bodies.push(row.body);
    this.publishing ??= this.drainPublishes();
    return batch.done;
  }

  /**
   * Registers the group (it gets every message published from now on) and starts claiming for it. Resolves once
   * the group exists and the notification listener is up.
   */
  async subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    if (this.closed) throw closedError(`cannot subscribe to ${stream}`);
    await this.ensureSchema();
    const groupId = await this.registerGroup(stream, group);
    this.listening ??= this.client
      .listen(this.options.schema, (payload) => this.notified(payload))
      .catch((error: Error) => {
        // Polling still delivers; a later subscribe tries to listen again.
        this.listening = undefined;
        this.onError(error);
      });
    await this.listening;
    const consumer = new GroupConsumer({
      client: this.client,
      sql: this.sql,
      options: this.options,
      stream,
      groupId,
      onDelivery,
      concurrency: Math.max(1, Math.floor(options.concurrency)),
      consumerName: options.consumerName,
      onError: this.onError,
      onStopped: (stopped) => this.consumers.delete(stopped),
    });
    this.consumers.add(consumer);
    consumer.start();
    return { stop: () => consumer.stop() };
  }

  /** The lag of a group: its messages not yet acknowledged, claimed or not. Without a group, only the stream. */
  async stats(stream: string, group?: string): Promise<StreamStats> {
    if (group === undefined) return { stream };
    await this.ensureSchema();
    const { rows } = await this.client.query<{ lag: number }>(this.sql.lag, [stream, group]);
    return { stream, group, lag: rows[0]?.lag ?? 0 };
  }

  async check(): Promise<CheckResult> {
    if (this.closed) return { ok: false, detail: 'closed' };
    try {
      await this.client.query('SELECT 1');
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: (error as Error).message };
    }
  }

  /**
   * Stops every subscription from claiming, waits for publishes in progress, then closes the connections. Messages
   * still in handlers' hands are not waited for: their leases run out and other consumers get them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    for (const consumer of this.consumers) consumer.halt();
    await this.publishing;
    await this.client.close();
  }

  /**
   * Deletes the messages every group of their stream has acknowledged (and those of streams without groups), once
   * older than `retentionMs`. Runs every `cleanupIntervalMs` on its own; resolves to the number deleted.
   */
  async cleanup(): Promise<number> {
    await this.ensureSchema();
    let total = 0;
    for (;;) {
      const { rows } = await this.client.query<{ deleted: number }>(this.sql.cleanup, [
        this.options.retentionMs,
        CLEANUP_BATCH,
      ]);
      const deleted = rows[0]?.deleted ?? 0;
      total += deleted;
      if (deleted < CLEANUP_BATCH || this.closed) return total;
    }
  }

  /**
   * Forgets a group: its pending deliveries go and it gets no new messages. Stop its subscriptions first. A group
   * nobody consumes any more otherwise keeps collecting deliveries, as on any broker with durable groups.
   */
  async deleteGroup(stream: string, group: string): Promise<void> {
    await this.ensureSchema();
    await this.client.query(this.sql.deleteGroup, [stream, group]);
  }

  private async registerGroup(stream: string, group: string): Promise<number> {
    for (;;) {
      const { rows } = await this.client.query<{ id: number }>(this.sql.registerGroup, [stream, group]);
      if (rows[0]) return rows[0].id;
    }
  }

  private ensureSchema(): Promise<void> {
    this.ready ??= this.client.exec(busSchemaSql(this.options.schema)).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  private notified(payload: string | null): void {
    for (const consumer of this.consumers) {
      if (payload !== null && consumer.stream !== payload) continue;
      // PGlite runs one statement at a time, in the order asked, and calls its listeners in the order they came: the
      // consumer that listened first would always claim first and, while it has free slots, starve the other
      // consumers of its group. A few milliseconds of jitter give them all a turn, as network timing does on a server.
      if (this.embedded) consumer.wakeAfter(Math.random() * EMBEDDED_WAKE_JITTER_MS);
      else consumer.wake();
    }
  }

  /** Writes queued publishes one statement at a time; publishes arriving meanwhile form the next batch. */
  private async drainPublishes(): Promise<void> {
    // Let the publishes of the current turn of the event loop join the first statement.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (let batch = this.publishQueue.shift(); batch !== undefined; batch = this.publishQueue.shift()) {
        const values = [
          batch.streams,
          batch.keys,
          batch.headers.join(JOINED_SEPARATOR),
          batch.bodies.join(JOINED_SEPARATOR),
          this.options.schema,
        ];
        try {
          await this.retrying(async () => {
            await this.ensureSchema();
            await this.client.query(this.sql.publishJoined, values);
          });
          batch.resolve();
        } catch (error) {
          batch.reject(error);
        }
      }
    } finally {
      this.publishing = undefined;
    }
  }

  /** Runs `work` again while it fails for want of a connection, up to `publishRetryMs`. */
  private async retrying(work: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.options.publishRetryMs;
    let delay = 50;
    for (;;) {
      try {
        await work();
        return;
      } catch (error) {
        if (!isConnectionError(error) || this.closed || Date.now() + delay > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(1_000, delay * 2);
      }
    }
  }
}

function publishBatch(): PublishBatch {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { streams: [], keys: [], headers: [], bodies: [], done, resolve, reject };
}

interface GroupConsumerOptions {
  client: PostgresBusClient;
  sql: BusStatements;
  options: PostgresBusOptions;
  stream: string;
  /** The id of the group's row in `groups`, which its deliveries carry. */
  groupId: number;
  onDelivery: (delivery: Delivery) => Promise<void>;
  concurrency: number;
  consumerName: string;
  onError: (error: Error) => void;
  onStopped: (consumer: GroupConsumer) => void;
}

/**
 * One subscription: claims up to its free slots and hands each row to the handler. Up to two claims run at once
 * (the second only for a quarter of the slots or more, so freed slots do not each cost a statement), slots being
 * reserved when a claim starts, so the messages unsettled and on their way never exceed the concurrency. A delivery
 * frees its slot when its handler calls `ack()` or `retry()` (or returns without settling), not when the server has
 * confirmed: the next claim then overlaps the DELETE of the acks instead of following it. Handlers that settled and
 * still await the server count against a second `concurrency`, so a server slow to confirm slows the claims. A claim
 * that fills its slots suggests more are waiting, so freed slots claim again at once; one that comes back short waits
 * for a NOTIFY, the poll, or the end of a retry delay this subscription scheduled.
 */
class GroupConsumer {
  readonly stream: string;
  private readonly o: GroupConsumerOptions;
  /** Deliveries handed out and not settled yet: the slots in use. */
  private unsettled = 0;
  /** Handlers running, settled or not. */
  private running = 0;
  /** Slots promised to claims on their way. */
  private reserved = 0;
  private readonly claims = new Set<Promise<void>>();
  /** True when messages may be waiting: set by a wake-up or a full claim, cleared by a short one. */
  private backlog = true;
  /** Counts wake-ups, so a short claim clears `backlog` only when nothing woke the consumer meanwhile. */
  private wakes = 0;
  private pumpScheduled = false;
  private halted = false;
  private failures = 0;
  private poll: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly settling = new Set<Promise<unknown>>();
  private readonly idle: (() => void)[] = [];
  private readonly acks: AckBatcher;
  private stopping: Promise<void> | undefined;

  constructor(options: GroupConsumerOptions) {
    this.o = options;
    this.stream = options.stream;
    this.acks = new AckBatcher(options.client, options.sql.ack, options.groupId);
  }

  start(): void {
    this.poll = setInterval(() => this.wake(), this.o.options.pollIntervalMs);
    this.pump();
  }

  wake(): void {
    this.wakes++;
    this.backlog = true;
    this.pump();
  }

  /** Stops claiming and scheduling; what is in hand goes on. */
  halt(): void {
    this.halted = true;
    if (this.poll) clearInterval(this.poll);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.halt();
      await Promise.allSettled([...this.claims]);
      if (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      await Promise.allSettled([...this.settling, this.acks.settled()]);
      this.o.onStopped(this);
    })();
    return this.stopping;
  }

  private pump(): void {
    if (this.halted || !this.backlog || this.claims.size >= MAX_CLAIMS_IN_FLIGHT) return;
    const free = Math.min(this.o.concurrency - this.unsettled, 2 * this.o.concurrency - this.running) - this.reserved;
    if (free <= 0 || (this.claims.size > 0 && free < this.o.concurrency / 4)) return;
    this.reserved += free;
    const claim: Promise<void> = this.claim(free).finally(() => {
      this.claims.delete(claim);
      this.pump();
    });
    this.claims.add(claim);
  }

  /**
   * Pumps once the pending microtasks have run: the handlers whose acks one DELETE settled all finish in them, so
   * the slots they free are claimed together, without waiting for another turn of the event loop.
   */
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private async claim(limit: number): Promise<void> {
    const wakes = this.wakes;
    let rows: ClaimedRow[];
    try {
      const result = await this.o.client.query<ClaimedRow>(this.o.sql.claim, [
        this.o.groupId,
        limit,
        this.o.options.claimTimeoutMs,
        this.o.consumerName,
      ]);
      rows = result.rows;
      this.failures = 0;
    } catch (error) {
      this.reserved -= limit;
      this.o.onError(error as Error);
      this.failures++;
      this.wakeAfter(Math.min(this.o.options.pollIntervalMs, 25 * 2 ** this.failures));
      return;
    }
    this.reserved -= limit;
    if (this.halted) {
      // Stopped while the claim was on its way: hand the rows straight back, uncounted.
      if (rows.length > 0) await this.unclaim(rows);
      return;
    }
    if (rows.length < limit && this.wakes === wakes) this.backlog = false;
    for (const row of rows) this.dispatch(row);
  }

  private async unclaim(rows: ClaimedRow[]): Promise<void> {
    const ids = rows.map((row) => row.id);
    const attempts = rows.map((row) => row.attempts);
    // Claims come back ordered by id.
    const range = [ids[0], ids[ids.length - 1]];
    await this.o.client
      .query(this.o.sql.unclaim, [this.o.groupId, ids, attempts, ...range])
      .catch((error: Error) => this.o.onError(error));
  }

  private dispatch(row: ClaimedRow): void {
    this.unsettled++;
    this.running++;
    void this.handle(new PostgresDelivery(this, row));
  }

  private async handle(delivery: PostgresDelivery): Promise<void> {
    try {
      await this.o.onDelivery(delivery);
    } catch (error) {
      this.o.onError(error instanceof Error ? error : new Error(String(error)));
    }
    // A handler that returned without settling gives the message back at once, as the in-memory bus does.
    if (!delivery.settled) delivery.retry(0).catch((failure: Error) => this.o.onError(failure));
    this.running--;
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    this.pumpSoon();
  }

  /** Acks a delivery its handler settled: its slot is free at once, the ack joins the next DELETE. */
  ackDelivery(id: string): Promise<void> {
    const acked = this.acks.add(id);
    this.release();
    return acked;
  }

  /** Gives a delivery back for `delayMs`, fenced by the attempt it was claimed with; its slot is free at once. */
  retryDelivery(id: string, attempts: number, delayMs: number): Promise<void> {
    const retried = this.o.client
      .query(this.o.sql.retry, [this.o.groupId, id, attempts, Math.max(0, Math.round(delayMs))])
      .then(() => this.wakeAfter(delayMs));
    this.settling.add(retried);
    const forget = (): void => {
      this.settling.delete(retried);
    };
    retried.then(forget, forget);
    this.release();
    return retried;
  }

  private release(): void {
    this.unsettled--;
    this.pumpSoon();
  }

  /** Wakes the consumer after `delayMs`, unless it halts first. */
  wakeAfter(delayMs: number): void {
    if (this.halted) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake();
    }, delayMs);
    this.timers.add(timer);
  }
}

/** One claimed message in the hands of a handler, settled once: later calls do nothing. */
class PostgresDelivery implements Delivery {
  readonly envelope: Envelope | null;
  readonly decodeError?: string;
  readonly raw?: string;
  readonly attempt: number;
  /** True once acked or given back. */
  settled = false;
  private readonly id: string;

  private readonly owner: GroupConsumer;

  constructor(owner: GroupConsumer, row: ClaimedRow) {
    this.owner = owner;
    this.id = row.id;
    this.attempt = row.attempts;
    const decoded = decodeRow(row);
    this.envelope = decoded.envelope;
    if (decoded.envelope === null) {
      this.decodeError = decoded.decodeError;
      this.raw = decoded.raw;
    }
  }

  ack(): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.owner.ackDelivery(this.id);
  }

  retry(delayMs: number): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = true;
    return this.owner.retryDelivery(this.id, this.attempt, delayMs);
  }
}

/**
 * Collects the acks of one subscription into DELETEs of many rows, so a busy consumer commits once per batch instead
 * of once per message. Up to two DELETEs run at once: acks never wait long for a slow one, and acks made meanwhile
 * form the next batch. The acks of a batch settle together and share one promise.
 */
class AckBatcher {
  /** Batches not yet sent, oldest first; acks join the last one until it is full. */
  private readonly queue: AckBatch[] = [];
  /** Every batch not yet settled, sent or not, for {@link settled}. */
  private readonly unsettled = new Set<Promise<void>>();
  private running = 0;
  private scheduled = false;

  private readonly client: PostgresBusClient;
  private readonly statement: string;
  private readonly groupId: number;

  constructor(client: PostgresBusClient, statement: string, groupId: number) {
    this.client = client;
    this.statement = statement;
    this.groupId = groupId;
  }

  add(id: string): Promise<void> {
    let batch = this.queue[this.queue.length - 1];
    if (batch === undefined || batch.ids.length >= ACK_BATCH) {
      batch = ackBatch();
      this.queue.push(batch);
      const done = batch.done;
      const forget = (): void => {
        this.unsettled.delete(done);
      };
      done.then(forget, forget);
      this.unsettled.add(done);
    }
    batch.ids.push(id);
    this.schedule();
    return batch.done;
  }

  /** Resolves once every ack made so far has settled, whether it succeeded or not. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.unsettled]);
  }

  private schedule(): void {
    if (this.scheduled || this.running >= MAX_ACKS_IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    // Once the pending microtasks have run, so the acks of the handlers of one claim (dispatched together) go together.
    queueMicrotask(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.shift();
    if (batch === undefined) return;
    // Sorted, so two consumers deleting overlapping rows (after a lease ran out) lock them in the same order.
    const ids = batch.ids.sort(byNumericText);
    this.running++;
    try {
      await this.client.query(this.statement, [this.groupId, ids, ids[0], ids[ids.length - 1]]);
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    } finally {
      this.running--;
      this.schedule();
    }
  }
}

interface AckBatch {
  ids: string[];
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function ackBatch(): AckBatch {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { ids: [], done, resolve, reject };
}

/** Orders decimal ids held as text (bigint ids come back from the driver as strings) by their value. */
function byNumericText(x: string, y: string): number {
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

function closedError(what: string): GantryError {
  return new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; ${what}`);
}

const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True for a failure that says the server could not be reached or went away (restart, failover), after which the
 * same statement may succeed: socket errors, SQLSTATE class 08 (connection exception) and 57P01–57P03 (shutdown,
 * starting up). node-postgres reports a dropped connection by message only.
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (
      CONNECTION_ERRNOS.has(code) ||
      code.startsWith('08') ||
      code === '57P01' ||
      code === '57P02' ||
      code === '57P03'
    ) {
      return true;
    }
  }
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect/i.test(
    error.message,
  );
}
