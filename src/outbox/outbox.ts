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
  /** Sent rows are deleted after this long. Default one day. */
  retentionMs?: number;
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
  private wake: (() => void) | undefined;
  private stopHold: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private lastCleanup = 0;

  constructor(options: OutboxRelayOptions) {
    this.options = {
      pollMs: 100,
      batchSize: 100,
      retentionMs: 86_400_000,
      holdMs: holdFromEnvironment(),
      ...options,
    };
  }

  /** Starts relaying in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Relays at once instead of at the next poll (after a commit that enqueued something). */
  nudge(): void {
    this.wake?.();
  }

  /** Stops after the batch in hand. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopHold?.();
    this.wake?.();
    await this.loop;
  }

  /** Relays one batch; returns how many rows it sent. Exposed for tests and `gantry` tools. */
  async relayOnce(): Promise<number> {
    const { db, service, bus, batchSize } = this.options;
    const schema = sql.identifier(gantrySchema(service));
    return db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ id: string; stream: string; envelope: Envelope | string }>(
        sql`select id, stream, envelope from ${schema}.outbox where sent_at is null order by id limit ${batchSize} for update skip locked`,
      );
      for (const row of rows) {
        const envelope = typeof row.envelope === 'string' ? (JSON.parse(row.envelope) as Envelope) : row.envelope;
        await bus.publish(row.stream, envelope);
        this.options.onRelayed?.(envelope);
      }
      if (rows.length > 0) {
        await tx.execute(
          sql`update ${schema}.outbox set sent_at = now() where id in ${sql.raw(`(${rows.map((r) => Number(r.id)).join(',')})`)}`,
        );
      }
      return rows.length;
    });
  }

  private async run(): Promise<void> {
    if (this.options.holdMs > 0) await this.hold();
    this.stopHold = undefined;
    let delay = this.options.pollMs;
    while (!this.stopped) {
      try {
        const sent = await this.relayOnce();
        delay = this.options.pollMs;
        if (sent === this.options.batchSize) continue;
        await this.cleanup();
      } catch (error) {
        // The bus or the database is away: keep the rows and try again later, backing off to 5 s.
        this.options.log.warn({ err: error, service: this.options.service }, 'outbox relay failed; will retry');
        delay = Math.min(5_000, delay * 2);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        this.wake = done;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
      this.wake = undefined;
    }
  }

  /** Waits out the test-only hold; only `stop()` ends it early (nudges do not). */
  private hold(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.options.holdMs);
      this.stopHold = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
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
