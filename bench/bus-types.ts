/** One measured way of moving messages through a broker, as the bus benchmarks report it. */
export interface BusBenchRow {
  /** What was measured, e.g. `raw pg` (the baseline) or `gantry postgres` (the adapter through the Bus interface). */
  name: string;
  /** Messages published, consumed and acknowledged per second, from the first publish to the last handler. */
  msgsPerSec: number;
  /** 99th percentile of the time from publish (stamped in the body) to the handler, in milliseconds. */
  p99Ms: number;
}
