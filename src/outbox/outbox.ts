import { sql } from 'drizzle-orm';
import type { Bus } from '../bus/bus.ts';
import type { Envelope } from '../bus/envelope.ts';
import type { Logger } from '../log/logger.ts';
import { gantrySchema, type SqlRunner } from './tables.ts';

/**
 * Stores a message in the service's outbox inside the caller's transaction: it exists if and only if the
 * transaction commits. A second message with the same idempotency key is dropped (returns false).
 */
export async function enqueueInOutbox(tx: SqlRunner, service: string, envelope: Envelope): Promise<boolean> {
  const schema = sql.identifier(gantrySchema(service));
  const { rows } = await tx.execute<{ id: string }>(
    sql`insert into ${schema}.outbox (stream, envelope, idempotency_key)
        values (${envelope.type}, ${JSON.stringify(envelope)}::jsonb, ${envelope.idempotencykey ?? null})
        on conflict (idempotency_key) do nothing returning id`,
  );
  return rows.length > 0;
}

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  db: SqlRunner;
  service: string;
  bus: Bus;
  log: Logger;
  /** How often the relay looks for new rows when idle; the bound on added latency. Default 100 ms. */
  pollMs?: number;
  /** Rows relayed per transaction. Default 100. */
  batchSize?: number;
  /**
   * The least time between the starts of two batches when nudged. Default 10 ms: under a steady stream of commits
   * the relay takes what they enqueued in one transaction every 10 ms instead of one transaction per commit, which
   * on a single-connection database (PGlite) doubled the work of every write.
   */
  gatherMs?: number;
  /** How long kept rows stay once sent (see `keepSent`). Default one day. */
  retentionMs?: number;
  /**
   * Keep every sent row, marked sent, for `retentionMs`: a record of what the service emitted. Default false: only
   * rows with an idempotency key are kept (while one is, a repeat of its key is dropped); the others are deleted
   * once sent.
   */
  keepSent?: boolean;
  /** Called with the envelope of each message once the bus accepted it. */
  onRelayed?: (envelope: Envelope) => void;
  /**
   * Test-only: how long the relay waits after `start()` before its first batch; nudges do not shorten it, `stop()`
   * does. Crash tests use it to kill a process after its outbox commits and before anything is relayed. Default:
   * the environment variable `GANTRY_OUTBOX_RELAY_HOLD_MS`, else 0. Never set it in production: held rows wait.
   */
  holdMs?: number;
}

/** The test-only hold of {@link OutboxRelayOptions.holdMs} from the environment (0 when unset or not a number). */
function holdFromEnvironment(): number {
  const value = Number(process.env.GANTRY_OUTBOX_RELAY_HOLD_MS ?? 0);
  return Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * Moves committed outbox rows to the bus, oldest first, and marks them sent. Crash-safe: a row is marked sent only
 * after the bus accepted it, so a crash in between publishes it again after restart — a duplicate with the same
 * message id, which consumers' inboxes drop. Several instances may relay at once: `FOR UPDATE SKIP LOCKED` gives
 * each its own rows.
 */
export class OutboxRelay {
  private readonly options: Required<Omit<OutboxRelayOptions, 'onRelayed'>> & Pick<OutboxRelayOptions, 'onRelayed'>;
  private stopped = false;
  /** A nudge came since the last batch started: rows may be waiting. */
  private nudged = false;
  /** Ends the current {@link sleep}, if it lets whatever calls it (a nudge, or `stop()`) end it. */
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private lastCleanup = 0;

  constructor(options: OutboxRelayOptions) {
    this.options = {
      pollMs: 100,
      batchSize: 100,
      gatherMs: 10,
      retentionMs: 86_400_000,
      keepSent: false,
      holdMs: holdFromEnvironment(),
      ...options,
    };
  }

  /** How many committed messages wait to be relayed now. */
  async backlog(): Promise<number> {
    const schema = sql.identifier(gantrySchema(this.options.service));
    const { rows } = await this.options.db.execute<{ n: number }>(
      sql`select count(*)::int as n from ${schema}.outbox where sent_at is null`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The service whose outbox this relays. */
  get service(): string {
    return this.options.service;
  }

  /** Starts relaying in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Relays at once instead of at the next poll (after a commit that enqueued something). */
  nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  /** Stops after the batch in hand. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  /**
   * Relays one batch; returns how many rows it sent. Exposed for tests and `gantry` tools. When a publish fails, the
   * rows the bus accepted are still marked sent, and the failure is thrown once the transaction has committed.
   */
  async relayOnce(): Promise<number> {
    const { db, service, bus, batchSize, keepSent, onRelayed } = this.options;
    const schema = sql.identifier(gantrySchema(service));
    let failure: unknown;
    const sent = await db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ id: string; stream: string; envelope: Envelope | string; keyed: boolean }>(
        sql`select id, stream, envelope, idempotency_key is not null as keyed from ${schema}.outbox
            where sent_at is null order by id limit ${batchSize} for update skip locked`,
      );
      const outcomes = await publishInKeyOrder(
        rows.map((row) => ({
          stream: row.stream,
          envelope: typeof row.envelope === 'string' ? (JSON.parse(row.envelope) as Envelope) : row.envelope,
        })),
        bus,
        onRelayed,
      );
      const kept: number[] = [];
      const gone: number[] = [];
      for (const [index, outcome] of outcomes.entries()) {
        const row = rows[index] as { id: string; keyed: boolean };
        if (outcome.ok) (row.keyed || keepSent ? kept : gone).push(Number(row.id));
        else failure ??= outcome.error;
      }
      // A row with an idempotency key stays, marked sent, for `retentionMs`: while it is there, an emit with the same
      // key is dropped at insert. A row without one can match no later insert, so it goes once sent, unless
      // `keepSent` asks for a record of every message. Marking it instead wrote a whole new version of the row,
      // envelope included (Postgres updates by writing a new copy): on PGlite, whose one connection serves the
      // requests too, that was a tenth of the CPU of each POST that emits.
      if (gone.length > 0) await tx.execute(sql`delete from ${schema}.outbox where id in ${idList(gone)}`);
      if (kept.length > 0) {
        await tx.execute(sql`update ${schema}.outbox set sent_at = now() where id in ${idList(kept)}`);
      }
      return kept.length + gone.length;
    });
    if (failure !== undefined) throw failure;
    return sent;
  }

  private async run(): Promise<void> {
    // The test-only hold: nudges do not shorten it, stop() does.
    if (this.options.holdMs > 0) await this.sleep(this.options.holdMs, false);
    let delay = this.options.pollMs;
    while (!this.stopped) {
      const batchStarted = performance.now();
      this.nudged = false;
      try {
        const sent = await this.relayOnce();
        delay = this.options.pollMs;
        if (sent === this.options.batchSize) continue;
        await this.cleanup();
      } catch (error) {
        // The bus or the database is away: keep the rows and try again later, backing off to 5 s.
        this.options.log.warn({ err: error, service: this.options.service }, 'outbox relay failed; will retry');
        delay = Math.min(5_000, delay * 2);
        // The commits that came during a failed batch do not cut its back-off short.
        this.nudged = false;
      }
      await this.pause(delay, batchStarted);
    }
  }

  /**
   * Waits `delay`, or less when nudged (also by a nudge that came during a batch that succeeded), but never ends
   * before `gatherMs` after the batch started unless stopped: commits that come close together share one batch.
   */
  private async pause(delay: number, batchStarted: number): Promise<void> {
    if (!this.nudged) await this.sleep(delay, true);
    const gather = this.options.gatherMs - (performance.now() - batchStarted);
    if (gather > 0) await this.sleep(gather, false);
  }

  /** Waits `ms`; `stop()` ends the wait, and so does a nudge when `nudgeEnds`. Returns at once when already stopped. */
  private sleep(ms: number, nudgeEnds: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopped) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = () => {
        if (nudgeEnds || this.stopped) done();
      };
    });
  }

  private async cleanup(): Promise<void> {
    if (Date.now() - this.lastCleanup < 60_000) return;
    this.lastCleanup = Date.now();
    const schema = sql.identifier(gantrySchema(this.options.service));
    const cutoff = new Date(Date.now() - this.options.retentionMs).toISOString();
    await this.options.db.execute(sql`delete from ${schema}.outbox where sent_at < ${cutoff}::timestamptz`);
  }
}

/** `(1,2,3)`: row ids (numbers from the database) as an SQL list. */
function idList(ids: readonly number[]) {
  return sql.raw(`(${ids.join(',')})`);
}

/** How the publish of one relayed row went. */
type PublishOutcome = { ok: true } | { ok: false; error: unknown };

/**
 * Publishes a batch of outbox rows without waiting for each before the next, except behind an earlier row with the
 * same key (the envelope's `subject`): those wait for it, and are not published at all when it fails, so a retried
 * row never lands after a later one of its key.
 *
 * @remarks One publish at a time kept the relay's transaction, and the row locks it holds, open for a broker round
 * trip per row: a batch of 100 rows waited 100 round trips. Now the publishes of a batch overlap, and only rows of
 * one key wait for each other. Rows the bus accepted are marked sent even when another row of the batch failed, so
 * the next batch sends again only what failed (and what waits behind it).
 */
async function publishInKeyOrder(
  messages: readonly { stream: string; envelope: Envelope }[],
  bus: Bus,
  onRelayed: ((envelope: Envelope) => void) | undefined,
): Promise<PublishOutcome[]> {
  const lastOfKey = new Map<string, Promise<void>>();
  const publishes = messages.map(({ stream, envelope }) => {
    const send = (): Promise<void> =>
      bus.publish(stream, envelope).then(() => {
        onRelayed?.(envelope);
      });
    const key = envelope.subject;
    if (key === undefined) return send();
    const before = lastOfKey.get(key);
    const published = before === undefined ? send() : before.then(send);
    lastOfKey.set(key, published);
    return published;
  });
  const settled = await Promise.allSettled(publishes);
  return settled.map((result) => (result.status === 'fulfilled' ? { ok: true } : { ok: false, error: result.reason }));
}
