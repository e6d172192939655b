/** The commands started in one event-loop turn, sharing one timer. */
interface DeadlineBatch {
  rejects: ((error: Error) => void)[];
  unsettled: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Bounds how long commands wait for their reply, reconnection included, with one timer per event-loop turn instead of
 * one per command. ioredis' `commandTimeout` arms and clears a timer on every command; the queries of the commands
 * connection (group creation, stats) use this instead, as publishes do in `RedisPublisher` (publisher.ts), which batches its
 * XADDs per turn itself.
 *
 * A command past its deadline is rejected with the same error ioredis gives (`Command timed out`); like with ioredis,
 * the command itself stays queued and may still run once the connection is back.
 */
export class RedisCommandDeadlines {
  private current: DeadlineBatch | undefined;

  private readonly timeoutMs: number;

  /** @param timeoutMs - how long a command may wait for its reply. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** `command`, or a rejection if it has not settled within the deadline. */
  bound<T>(command: Promise<T>): Promise<T> {
    const batch = this.current ?? this.open();
    batch.unsettled++;
    return new Promise<T>((resolve, reject) => {
      batch.rejects.push(reject);
      command.then(
        (value) => {
          resolve(value);
          this.settled(batch);
        },
        (error: unknown) => {
          reject(error);
          this.settled(batch);
        },
      );
    });
  }

  private open(): DeadlineBatch {
    const batch: DeadlineBatch = { rejects: [], unsettled: 0, timer: undefined };
    batch.timer = setTimeout(() => {
      if (this.current === batch) this.current = undefined;
      // Rejecting a promise that already resolved does nothing, so only the commands still waiting fail.
      const error = new Error('Command timed out');
      for (const reject of batch.rejects) reject(error);
    }, this.timeoutMs);
    this.current = batch;
    // Commands of later turns get a deadline of their own, counted from when they start.
    setImmediate(() => {
      if (this.current === batch) this.current = undefined;
    });
    return batch;
  }

  private settled(batch: DeadlineBatch): void {
    batch.unsettled--;
    if (batch.unsettled > 0) return;
    clearTimeout(batch.timer);
    // A batch whose commands all settled takes no more: its timer is gone.
    if (this.current === batch) this.current = undefined;
  }
}
