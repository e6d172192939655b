/** One bucket of the request series as the dashboard charts it. */
export interface SeriesPoint {
  /** Start of the bucket, epoch ms. */
  at: number;
  requests: number;
  /** Answers with a 5xx status. */
  errors: number;
  /** Answers with a 4xx status. */
  refused: number;
  /** Latency percentiles in ms (0 when the bucket saw no request). */
  p50: number;
  p95: number;
  p99: number;
}

interface Bucket {
  at: number;
  requests: number;
  errors: number;
  refused: number;
  /** A uniform sample of the bucket's latencies (reservoir sampling), bounded whatever the traffic. */
  sample: number[];
}

const SAMPLE_SIZE = 256;

/**
 * Request rate, error rate and latency over the last minutes, in fixed buckets held in a ring: memory stays the
 * same however long the host runs and however many requests it serves.
 */
export class RequestSeries {
  private readonly buckets: (Bucket | undefined)[];

  private readonly windowMs: number;
  readonly bucketMs: number;

  /**
   * @param windowMs How far back the series goes.
   * @param bucketMs The width of one bucket.
   */
  constructor(windowMs: number, bucketMs: number) {
    this.windowMs = windowMs;
    this.bucketMs = bucketMs;
    this.buckets = new Array(Math.ceil(windowMs / bucketMs)).fill(undefined);
  }

  /** Records one answered request. */
  record(status: number, latencyMs: number, now = Date.now()): void {
    const at = now - (now % this.bucketMs);
    const index = Math.floor(at / this.bucketMs) % this.buckets.length;
    let bucket = this.buckets[index];
    if (bucket === undefined || bucket.at !== at) {
      bucket = { at, requests: 0, errors: 0, refused: 0, sample: [] };
      this.buckets[index] = bucket;
    }
    bucket.requests++;
    if (status >= 500) bucket.errors++;
    else if (status >= 400) bucket.refused++;
    if (bucket.sample.length < SAMPLE_SIZE) bucket.sample.push(latencyMs);
    else {
      const slot = Math.floor(Math.random() * bucket.requests);
      if (slot < SAMPLE_SIZE) bucket.sample[slot] = latencyMs;
    }
  }

  /** Every bucket of the window, oldest first, empty ones included so charts keep their time axis. */
  points(now = Date.now()): SeriesPoint[] {
    const last = now - (now % this.bucketMs);
    const points: SeriesPoint[] = [];
    for (let at = last - (this.buckets.length - 1) * this.bucketMs; at <= last; at += this.bucketMs) {
      const bucket = this.buckets[Math.floor(at / this.bucketMs) % this.buckets.length];
      if (bucket === undefined || bucket.at !== at) {
        points.push({ at, requests: 0, errors: 0, refused: 0, p50: 0, p95: 0, p99: 0 });
        continue;
      }
      const sorted = [...bucket.sample].sort((a, b) => a - b);
      points.push({
        at,
        requests: bucket.requests,
        errors: bucket.errors,
        refused: bucket.refused,
        p50: percentile(sorted, 0.5),
        p95: percentile(sorted, 0.95),
        p99: percentile(sorted, 0.99),
      });
    }
    return points.filter((point) => point.at > now - this.windowMs);
  }
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const value = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return Math.round(value * 100) / 100;
}
