/**
 * Gantry's observability, as host plugins: Prometheus metrics, OpenTelemetry tracing, error reporting to Sentry and
 * the `/_gantry` dashboard.
 * @packageDocumentation
 */

export type { LogEntry } from './dashboard/event-log.ts';
export { type DashboardOptions, type DeadLetterEntry, dashboardPlugin } from './dashboard/plugin.ts';
export type { SeriesPoint } from './dashboard/series.ts';
export type { Topology, TopologyEvent } from './dashboard/topology.ts';
export { type SentryOptions, type SentryPlugin, sentryPlugin } from './errors/plugin.ts';
export { OVERFLOW_VALUE } from './metrics/custom.ts';
export { METRIC_PREFIX, type MetricsOptions, type MetricsPlugin, metricsPlugin } from './metrics/plugin.ts';
export { type ObservabilityOptions, observability } from './observability.ts';
export { otlpTracesUrl } from './tracing/exporter.ts';
export { SPAN_ATTRIBUTES, type TracingOptions, type TracingPlugin, tracingPlugin } from './tracing/plugin.ts';
export {
  SpanStore,
  type SpanStoreOptions,
  type StoredSpan,
  type TraceSummary,
} from './tracing/span-store.ts';
export { type TraceWorkOptions, traceWork } from './tracing/work-span.ts';
