/**
 * Bounds how long the queries of the commands connection (group creation, stats) wait for their reply, reconnection
 * included. That connection has no ioredis `commandTimeout`, which would arm and clear a timer on every command:
 * publishes on it are bounded by `RedisPublisher` (publisher.ts), one timer per turn, and these queries are few, so a
 * timer each is fine.
 *
 * A command past its deadline is rejected with the same error ioredis gives (`Command timed out`); like with ioredis,
 * the command itself stays queued and may still run once the connection is back.
 */
export class RedisCommandDeadlines {
  private readonly timeoutMs: number;

  /** @param timeoutMs - how long a command may wait for its reply. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** `command`, or a rejection if it has not settled within the deadline. */
  bound<T>(command: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Command timed out')), this.timeoutMs);
    });
    return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
  }
}
