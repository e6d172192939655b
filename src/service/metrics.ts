/** Label values of one observation, by label name. Values should come from a small set (never ids or raw paths). */
export type MetricLabels<L extends string = string> = Readonly<Partial<Record<L, string | number>>>;

/** A monotonic count (requests handled, orders placed). */
export interface CounterMetric<L extends string = string> {
  /** Adds `value` (default 1, never negative) to the series of `labels`. */
  inc(labels?: MetricLabels<L>, value?: number): void;
}

/** A value that goes up and down (queue depth, items in a cache). */
export interface GaugeMetric<L extends string = string> {
  set(value: number, labels?: MetricLabels<L>): void;
  inc(labels?: MetricLabels<L>, value?: number): void;
  dec(labels?: MetricLabels<L>, value?: number): void;
}

/** A distribution of observed values (sizes, durations in seconds). */
export interface HistogramMetric<L extends string = string> {
  observe(value: number, labels?: MetricLabels<L>): void;
}

/** Options of {@link Metrics.histogram}. */
export interface HistogramOptions<L extends string = string> {
  labels?: readonly L[];
  /** Upper bounds of the buckets, ascending; Prometheus' defaults (seconds) when omitted. */
  buckets?: readonly number[];
}

/**
 * Custom metrics of a service, as handlers see them at `ctx.metrics`. Asking twice for one name returns the same
 * metric, so handlers may ask on every run. A metrics host plugin gives them a registry (and a `service` label);
 * without one they cost nothing and record nothing.
 *
 * @example
 * ctx.metrics.counter('orders_placed_total', 'Orders placed', ['country']).inc({ country: order.country });
 */
export interface Metrics {
  counter<L extends string = never>(name: string, help: string, labels?: readonly L[]): CounterMetric<L>;
  gauge<L extends string = never>(name: string, help: string, labels?: readonly L[]): GaugeMetric<L>;
  histogram<L extends string = never>(name: string, help: string, options?: HistogramOptions<L>): HistogramMetric<L>;
}

const noopCounter: CounterMetric & GaugeMetric & HistogramMetric = {
  inc: () => undefined,
  dec: () => undefined,
  set: () => undefined,
  observe: () => undefined,
};

/** The metrics of a host without a metrics plugin (and of `testContext()`): every call is accepted and dropped. */
export const noopMetrics: Metrics = {
  counter: () => noopCounter,
  gauge: () => noopCounter,
  histogram: () => noopCounter,
};
