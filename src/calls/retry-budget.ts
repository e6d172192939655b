/**
 * A retry budget: retries are allowed only while they stay under a share of the first attempts seen over a sliding
 * window (plus a small allowance per second), so that when a target fails, retries cannot multiply the load on it
 * (three attempts per call would triple it). Written here because cockatiel's retry counts attempts per call, not
 * per target; the idea is Finagle's RetryBudget, over ten one-second buckets instead of expiring tokens.
 *
 * @example
 * const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1 });
 * budget.recordRequest();
 * if (budget.tryRetry()) retry();
 */
export class RetryBudget {
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private bucketSecond = 0;

  private readonly options: { ratio: number; minPerSecond: number };
  private readonly now: () => number;

  constructor(options: { ratio: number; minPerSecond: number }, now: () => number = Date.now) {
    this.options = options;
    this.now = now;
  }

  /** Counts a first attempt: it earns `ratio` retries. */
  recordRequest(): void {
    const current = this.rotate();
    this.requests[current] = (this.requests[current] as number) + 1;
  }

  /** Takes one retry from the budget; false (and nothing taken) when the budget is spent. */
  tryRetry(): boolean {
    const current = this.rotate();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.requests[i] as number;
      retries += this.retries[i] as number;
    }
    const allowed = requests * this.options.ratio + this.options.minPerSecond * BUCKETS;
    if (retries + 1 > allowed) return false;
    this.retries[current] = (this.retries[current] as number) + 1;
    return true;
  }

  /** Retries taken and first attempts seen over the window, for stats. */
  snapshot(): { requests: number; retries: number } {
    this.rotate();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.requests[i] as number;
      retries += this.retries[i] as number;
    }
    return { requests, retries };
  }

  /** Clears the buckets of the seconds that passed since the last call; returns the current bucket. */
  private rotate(): number {
    const second = Math.floor(this.now() / 1000);
    const elapsed = second - this.bucketSecond;
    if (elapsed > 0) {
      for (let i = 1; i <= Math.min(elapsed, BUCKETS); i++) {
        const index = (this.bucketSecond + i) % BUCKETS;
        this.requests[index] = 0;
        this.retries[index] = 0;
      }
      this.bucketSecond = second;
    }
    return second % BUCKETS;
  }
}

/** Seconds in the window. */
const BUCKETS = 10;
