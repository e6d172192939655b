import type { HostPlugin } from '../host/plugin.ts';
import { type DashboardOptions, dashboardPlugin } from './dashboard/plugin.ts';
import { type SentryOptions, sentryPlugin } from './errors/plugin.ts';
import { type MetricsOptions, metricsPlugin } from './metrics/plugin.ts';
import { type TracingOptions, tracingPlugin } from './tracing/plugin.ts';

/** Options of {@link observability}: each part's options, or false to leave it out. */
export interface ObservabilityOptions {
  metrics?: MetricsOptions | false;
  tracing?: TracingOptions | false;
  /** Sentry reporting; inert unless `SENTRY_DSN` (or `dsn`) is set. */
  errors?: SentryOptions | false;
  /** The dashboard reads the tracing plugin's traces; on in dev only unless `enabled`. */
  dashboard?: Omit<DashboardOptions, 'traces'> | false;
}

/**
 * Every observability plugin, wired together: metrics at `/metrics`, tracing, Sentry reporting and the dashboard at
 * `/_gantry` showing the tracing plugin's traces.
 *
 * @example
 * export default defineHost({ services: [customers], plugins: observability() });
 */
export function observability(options: ObservabilityOptions = {}): HostPlugin[] {
  const plugins: HostPlugin[] = [];
  if (options.metrics !== false) plugins.push(metricsPlugin(options.metrics));
  const tracing = options.tracing === false ? undefined : tracingPlugin(options.tracing);
  if (tracing) plugins.push(tracing);
  if (options.errors !== false) plugins.push(sentryPlugin(options.errors));
  if (options.dashboard !== false) {
    plugins.push(dashboardPlugin({ ...options.dashboard, ...(tracing ? { traces: tracing.store } : {}) }));
  }
  return plugins;
}
