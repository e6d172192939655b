import { Cron } from 'croner';
import { GantryError } from '../errors/gantry-error.ts';
import type { MissedTicks } from './task.ts';

/** Ticks of one schedule run for missed ticks at most, with `missed: 'all'`. */
export const MAX_CATCH_UP = 100;

/**
 * A cron expression (five fields, or six with seconds first) in a time zone, for the tick arithmetic of schedules.
 * The timer is the runtime's own: croner computes, it does not schedule here.
 */
export class CronSchedule {
  private readonly cron: Cron;

  readonly pattern: string;
  readonly timezone?: string;

  /**
   * @param timezone An IANA zone; UTC when omitted, so a schedule fires at the same instant whatever the machine's
   *   zone is.
   */
  constructor(pattern: string, timezone?: string) {
    this.pattern = pattern;
    this.timezone = timezone;
    try {
      this.cron = new Cron(pattern, { timezone: timezone ?? 'UTC', paused: true });
    } catch (error) {
      throw new GantryError(
        'GANTRY_ERR_SERVICE_DEFINITION',
        `cron expression '${pattern}'${timezone ? ` in ${timezone}` : ''} is not valid: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  /** The first tick strictly after `after`, or null when the expression has no more. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }

  /**
   * The ticks in `(after, until]` that the policy says to fire, oldest first: none for `skip`, the latest for `once`,
   * and the latest {@link MAX_CATCH_UP} for `all`.
   */
  missed(after: Date, until: Date, policy: MissedTicks): Date[] {
    switch (policy) {
      case 'skip':
        return [];
      case 'once':
        return this.previous(1, after, until);
      case 'all':
        return this.previous(MAX_CATCH_UP, after, until);
      default: {
        const unknown: never = policy;
        throw new TypeError(`unknown missed-ticks policy '${String(unknown)}'`);
      }
    }
  }

  private previous(n: number, after: Date, until: Date): Date[] {
    // A moment past `until` so that a tick exactly at it counts as passed.
    return this.cron
      .previousRuns(n, new Date(until.getTime() + 1))
      .filter((tick) => tick.getTime() > after.getTime() && tick.getTime() <= until.getTime())
      .reverse();
  }
}
