import type { GantryError } from '../errors/gantry-error.ts';

/** A run whose deadline a {@link RunDeadlines} keeps: told once when its time is up or the host aborts it. */
export abstract class TimedRun {
  /** When the run's own timeout ends, on the `performance.now()` clock. */
  expiresAt = 0;
  /** @internal Links of the run in its lane; undefined when it is not tracked. */
  lane: Lane | undefined = undefined;
  /** @internal */
  prev: TimedRun | undefined = undefined;
  /** @internal */
  next: TimedRun | undefined = undefined;

  /** The run's own timeout is over; it is no longer tracked. */
  abstract timedOut(): void;
  /** The host aborts the run (its shutdown deadline); it is no longer tracked. */
  abstract aborted(reason: GantryError): void;
}

/** The runs sharing one timeout, oldest first, and the timer of the oldest. */
interface Lane {
  timeoutMs: number;
  head: TimedRun | undefined;
  tail: TimedRun | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The deadlines of the runs in flight in one host: each run's own timeout, and the host's shutdown deadline that
 * aborts them all.
 *
 * Kept by hand rather than with a `setTimeout` per run: on the request path a Node timer costs an object with its
 * async resource, a list insert and a removal (about 0.8 µs a run on our machines, against a request that costs about
 * 25 µs in all). Runs with the same timeout expire in the order they started, so one list per timeout value, oldest
 * first, and one timer for its oldest run suffice: adding and removing a run is relinking two pointers.
 */
export class RunDeadlines {
  private readonly lanes = new Map<number, Lane>();
  private count = 0;

  /** How many runs are in flight. */
  get size(): number {
    return this.count;
  }

  /** Tracks `run` from `startedAt` (`performance.now()`) until it is removed, times out or is aborted. */
  add(run: TimedRun, timeoutMs: number, startedAt: number): void {
    let lane = this.lanes.get(timeoutMs);
    if (lane === undefined) {
      lane = { timeoutMs, head: undefined, tail: undefined, timer: undefined };
      this.lanes.set(timeoutMs, lane);
    }
    run.expiresAt = startedAt + timeoutMs;
    run.lane = lane;
    run.prev = lane.tail;
    run.next = undefined;
    if (lane.tail === undefined) lane.head = run;
    else lane.tail.next = run;
    lane.tail = run;
    this.count++;
    if (lane.timer === undefined) lane.timer = setTimeout(expireLane, timeoutMs, this, lane);
    // A lane's timer holds the process open only while the lane has runs, as a timer per run would.
    else if (lane.head === run) lane.timer.ref();
  }

  /** Stops tracking `run`; nothing happens if it is not tracked. */
  remove(run: TimedRun): void {
    const lane = run.lane;
    if (lane === undefined) return;
    if (run.prev === undefined) lane.head = run.next;
    else run.prev.next = run.next;
    if (run.next === undefined) lane.tail = run.prev;
    else run.next.prev = run.prev;
    run.lane = undefined;
    run.prev = undefined;
    run.next = undefined;
    this.count--;
    // The timer stays armed, so a busy lane does not re-arm it per run; when it fires on an empty lane, the lane goes.
    if (lane.head === undefined) lane.timer?.unref();
  }

  /** Aborts every run in flight with `reason`. */
  abortAll(reason: GantryError): void {
    const runs: TimedRun[] = [];
    for (const lane of this.lanes.values()) {
      for (let run = lane.head; run !== undefined; run = run.next) runs.push(run);
    }
    for (const run of runs) {
      this.remove(run);
      run.aborted(reason);
    }
  }

  /** Times out the lane's runs whose time is up, then re-arms its timer for the oldest left, or drops the lane. */
  expire(lane: Lane): void {
    lane.timer = undefined;
    const now = performance.now();
    // Node may fire a timer up to a millisecond before its time on the performance clock.
    while (lane.head !== undefined && lane.head.expiresAt <= now + 1) {
      const run = lane.head;
      this.remove(run);
      run.timedOut();
    }
    if (lane.head === undefined) {
      if (this.lanes.get(lane.timeoutMs) === lane) this.lanes.delete(lane.timeoutMs);
      return;
    }
    lane.timer = setTimeout(expireLane, Math.max(1, Math.ceil(lane.head.expiresAt - now)), this, lane);
  }
}

function expireLane(deadlines: RunDeadlines, lane: Lane): void {
  deadlines.expire(lane);
}
