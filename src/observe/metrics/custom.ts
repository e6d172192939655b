import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Logger } from '../../log/logger.ts';
import type { ServiceInfo } from '../../service/context.ts';
import type {
  CounterMetric,
  GaugeMetric,
  HistogramMetric,
  HistogramOptions,
  MetricLabels,
  Metrics,
} from '../../service/metrics.ts';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** The label every custom metric gets, naming the service whose handler recorded it. */
const SERVICE_LABEL = 'service';
/** The value every label takes once a metric has too many series. */
export const OVERFLOW_VALUE = '_other';
const MAX_VALUE_LENGTH = 128;

type Kind = 'counter' | 'gauge' | 'histogram';
type PromMetric = Counter<string> | Gauge<string> | Histogram<string>;

interface Entry {
  name: string;
  kind: Kind;
  labels: readonly string[];
  metric: PromMetric;
  /** The label sets seen so far, so that a metric stops growing at `maxSeries`. */
  series: Set<string>;
  warned: boolean;
}

/** Options of {@link CustomMetrics}. */
export interface CustomMetricsOptions {
  registry: Registry;
  log: Logger;
  /** Label sets one metric may have before new ones are folded into `_other`. */
  maxSeries: number;
  /** Names handlers may not take (the plugin's own prefix). */
  reservedPrefixes: readonly string[];
}

/**
 * The custom metrics handlers record through `ctx.metrics`, kept in the plugin's registry. Every metric gets a
 * `service` label, label values are cut to 128 characters, and a metric that reaches `maxSeries` label sets records
 * any new set as `_other` (and warns once), so one handler labelling by user id cannot exhaust memory or Prometheus.
 */
export class CustomMetrics {
  private readonly entries = new Map<string, Entry>();

  private readonly options: CustomMetricsOptions;

  constructor(options: CustomMetricsOptions) {
    this.options = options;
  }

  /** The `ctx.metrics` of one service. */
  forService(service: ServiceInfo): Metrics {
    const record = (entry: Entry, labels: MetricLabels | undefined): Record<string, string> =>
      this.bound(entry, labels, service.name);
    // Handlers ask for their metrics on every run: after the first ask, the same handle comes back from here.
    const handles = new Map<string, { kind: Kind; labels: readonly string[]; handle: unknown }>();
    const cached = <T>(kind: Kind, name: string, labels: readonly string[], make: () => T): T => {
      const known = handles.get(name);
      if (known !== undefined && known.kind === kind && sameLabels(known.labels, labels)) return known.handle as T;
      const handle = make();
      handles.set(name, { kind, labels, handle });
      return handle;
    };
    return {
      counter: <L extends string>(name: string, help: string, labels: readonly L[] = []): CounterMetric<L> =>
        cached('counter', name, labels, () => {
          const entry = this.entry('counter', name, help, labels, undefined);
          const metric = entry.metric as Counter<string>;
          return { inc: (values?: MetricLabels<L>, value = 1) => metric.inc(record(entry, values), value) };
        }),
      gauge: <L extends string>(name: string, help: string, labels: readonly L[] = []): GaugeMetric<L> =>
        cached('gauge', name, labels, () => {
          const entry = this.entry('gauge', name, help, labels, undefined);
          const metric = entry.metric as Gauge<string>;
          return {
            set: (value: number, values?: MetricLabels<L>) => metric.set(record(entry, values), value),
            inc: (values?: MetricLabels<L>, value = 1) => metric.inc(record(entry, values), value),
            dec: (values?: MetricLabels<L>, value = 1) => metric.dec(record(entry, values), value),
          };
        }),
      histogram: <L extends string>(
        name: string,
        help: string,
        options: HistogramOptions<L> = {},
      ): HistogramMetric<L> =>
        cached('histogram', name, options.labels ?? [], () => {
          const entry = this.entry('histogram', name, help, options.labels ?? [], options.buckets);
          const metric = entry.metric as Histogram<string>;
          return { observe: (value: number, values?: MetricLabels<L>) => metric.observe(record(entry, values), value) };
        }),
    };
  }

  private entry(
    kind: Kind,
    name: string,
    help: string,
    labels: readonly string[],
    buckets: readonly number[] | undefined,
  ): Entry {
    const known = this.entries.get(name);
    if (known) {
      if (known.kind !== kind || !sameLabels(known.labels, labels)) {
        throw invalid(
          `metric '${name}' is already a ${known.kind} with labels [${known.labels.join(', ')}]; it cannot also be a ${kind} with labels [${labels.join(', ')}]`,
        );
      }
      return known;
    }
    if (!METRIC_NAME.test(name)) throw invalid(`'${name}' is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`);
    const reserved = this.options.reservedPrefixes.find((prefix) => name.startsWith(prefix));
    if (reserved !== undefined) throw invalid(`metric names starting with '${reserved}' are reserved for Gantry`);
    for (const label of labels) {
      if (!LABEL_NAME.test(label) || label.startsWith('__') || label === SERVICE_LABEL) {
        throw invalid(`'${label}' cannot be a label of metric '${name}' (invalid, reserved, or 'service')`);
      }
    }
    const config = {
      name,
      help,
      labelNames: [...labels, SERVICE_LABEL],
      registers: [this.options.registry],
    };
    let metric: PromMetric;
    try {
      metric =
        kind === 'counter'
          ? new Counter(config)
          : kind === 'gauge'
            ? new Gauge(config)
            : new Histogram(buckets ? { ...config, buckets: [...buckets] } : config);
    } catch (error) {
      // prom-client refuses a name another part of the registry already took (a default metric, say).
      throw invalid(`metric '${name}' cannot be registered: ${(error as Error).message}`, error);
    }
    const entry: Entry = { name, kind, labels, metric, series: new Set(), warned: false };
    this.entries.set(name, entry);
    return entry;
  }

  private bound(entry: Entry, values: MetricLabels | undefined, service: string): Record<string, string> {
    const labels: Record<string, string> = {};
    let key = service;
    for (const name of entry.labels) {
      const raw = values?.[name];
      const value = raw === undefined ? '' : String(raw).slice(0, MAX_VALUE_LENGTH);
      labels[name] = value;
      key += `\u0000${value}`;
    }
    labels[SERVICE_LABEL] = service;
    if (entry.series.has(key)) return labels;
    if (entry.series.size < this.options.maxSeries) {
      entry.series.add(key);
      return labels;
    }
    if (!entry.warned) {
      entry.warned = true;
      this.options.log.warn(
        { metric: entry.name, maxSeries: this.options.maxSeries },
        `a custom metric reached its series limit; new label values are recorded as '${OVERFLOW_VALUE}'`,
      );
    }
    for (const name of entry.labels) labels[name] = OVERFLOW_VALUE;
    return labels;
  }
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

function invalid(message: string, cause?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_METRIC_INVALID', message, cause === undefined ? {} : { cause });
}
