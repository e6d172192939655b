import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { requireRole } from '../../auth/guard.ts';
import type { EventRun } from '../../host/hooks.ts';
import type { HostInfo } from '../../host/info.ts';
import type { HostPlugin, HostPluginApi } from '../../host/plugin.ts';
import { methodLabel, routeLabel } from '../http-labels.ts';
import { withTimeout } from '../timeout.ts';
import { CountedHistogram, type CountedSeries } from './counted-histogram.ts';
import { CustomMetrics } from './custom.ts';
import { registerWorkMetrics } from './work-metrics.ts';

/** Options of {@link metricsPlugin}. */
export interface MetricsOptions {
  /** Where Prometheus scrapes; default `/metrics`. */
  path?: string;
  /**
   * The role a scrape must hold in prod (or with `GANTRY_ADMIN_PROTECT=true`), checked by `requireRole`; default
   * `ops`. Elsewhere `/metrics` is open.
   */
  role?: string;
  /** Process and event-loop metrics (prom-client's defaults) in the same registry; default true. */
  defaultMetrics?: boolean;
  /** Bucket bounds of the HTTP and event duration histograms, in seconds. */
  buckets?: readonly number[];
  /** Label sets one custom metric may have before new ones are recorded as `_other`; default 500. */
  maxSeries?: number;
  /** How long a scrape waits for the bus to tell each group's lag; default 1000 ms. Slower answers are left out. */
  lagTimeoutMs?: number;
}

/** The metrics plugin: a host plugin with the registry it owns. */
export interface MetricsPlugin extends HostPlugin {
  /** The plugin's own registry (never prom-client's global one): two hosts in one process keep apart. */
  readonly registry: Registry;
}

/** Metric names Gantry keeps for itself; custom metrics cannot take them. */
export const METRIC_PREFIX = 'gantry_';
const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface EventSeries {
  labels: { kind: string; service: string; event: string };
  started: number;
  succeeded: number;
  failed: number;
  durationSucceeded: CountedSeries;
  durationFailed: CountedSeries;
}

/**
 * Serves Prometheus metrics of the host at `/metrics`: HTTP request durations by route template and status, runs of
 * every event, stream counters and lag read at scrape time, process metrics, and the custom metrics handlers record
 * through `ctx.metrics`. Label values come from definitions (routes, events, streams), never from requests. In prod
 * a scrape must present a credential holding the `ops` role (see `role`).
 *
 * @example
 * const metrics = metricsPlugin();
 * createHost({ services, plugins: [metrics] }); // GET /metrics
 */
export function metricsPlugin(options: MetricsOptions = {}): MetricsPlugin {
  const registry = new Registry();
  return {
    name: 'metrics',
    registry,
    register(api) {
      const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
      if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
      registerHttpMetrics(api, registry, buckets);
      registerEventMetrics(api, registry, buckets);
      registerStreamMetrics(api.info, registry, options.lagTimeoutMs ?? 1000);
      registerWorkMetrics(api, registry, buckets, options.lagTimeoutMs ?? 1000);
      const custom = new CustomMetrics({
        registry,
        log: api.log,
        maxSeries: options.maxSeries ?? 500,
        reservedPrefixes: [METRIC_PREFIX],
      });
      api.metrics((service) => custom.forService(service));
      const path = options.path ?? '/metrics';
      api.routes((app) => {
        app.get(path, { onRequest: requireRole(options.role ?? 'ops') }, async (_request, reply) => {
          const text = await registry.metrics();
          return reply.type(registry.contentType).send(text);
        });
      });
    },
  };
}

function registerHttpMetrics(api: HostPluginApi, registry: Registry, buckets: number[]): void {
  const duration = new CountedHistogram({
    name: 'gantry_http_request_duration_seconds',
    help: 'Time from receiving an HTTP request to sending its answer, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets,
    registers: [registry],
  });
  // One child per (route, method, status): the label lookup happens once per combination, not once per request.
  // Maps nested by route, method and status rather than one keyed by a string joined per request: the route and
  // method strings are the same instances every time (their hashes are kept), and nothing is allocated.
  const children = new Map<string, Map<string, Map<number, CountedSeries>>>();
  api.routes((app) => {
    app.addHook('onResponse', (request, reply, done) => {
      const method = methodLabel(request);
      const route = routeLabel(request);
      const status = reply.statusCode;
      let byMethod = children.get(route);
      if (byMethod === undefined) {
        byMethod = new Map();
        children.set(route, byMethod);
      }
      let byStatus = byMethod.get(method);
      if (byStatus === undefined) {
        byStatus = new Map();
        byMethod.set(method, byStatus);
      }
      let child = byStatus.get(status);
      if (child === undefined) {
        child = duration.series({ method, route, status: String(status) });
        byStatus.set(status, child);
      }
      child.observe(reply.elapsedTime / 1000);
      done();
    });
  });
}

function registerEventMetrics(api: HostPluginApi, registry: Registry, buckets: number[]): void {
  const labelNames = ['kind', 'service', 'event'] as const;
  // Runs are counted in plain numbers and handed to the counters at scrape time: an increment per run then costs
  // what adding one does, where a prom-client `inc` hashes its labels every time.
  const all: EventSeries[] = [];
  const counted = (name: string, help: string, field: 'started' | 'succeeded' | 'failed'): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const entry of all) this.inc(entry.labels, entry[field]);
      },
    });
  };
  counted('gantry_events_started_total', 'Runs of events begun (HTTP events, stream consumers, loops)', 'started');
  counted('gantry_events_succeeded_total', 'Runs of events that succeeded', 'succeeded');
  counted(
    'gantry_events_failed_total',
    'Runs of events that failed (an error, a timeout, or a refused request)',
    'failed',
  );
  const duration = new CountedHistogram({
    name: 'gantry_event_duration_seconds',
    help: 'Duration of event runs, by outcome',
    labelNames: [...labelNames, 'outcome'],
    buckets,
    registers: [registry],
  });
  // Keyed by service then event: both names come from definitions, and two map lookups beat building a key string.
  const byService = new Map<string, Map<string, EventSeries>>();
  const series = (run: EventRun): EventSeries => {
    let events = byService.get(run.service.name);
    if (events === undefined) {
      events = new Map();
      byService.set(run.service.name, events);
    }
    let found = events.get(run.event);
    if (found === undefined) {
      const labels = { kind: run.kind, service: run.service.name, event: run.event };
      found = {
        labels,
        started: 0,
        succeeded: 0,
        failed: 0,
        durationSucceeded: duration.series({ ...labels, outcome: 'succeeded' }),
        durationFailed: duration.series({ ...labels, outcome: 'failed' }),
      };
      events.set(run.event, found);
      all.push(found);
    }
    return found;
  };
  api.hook('onEventStart', (run) => {
    series(run).started++;
  });
  api.hook('onEventEnd', (run) => {
    const found = series(run);
    const seconds = (run.durationMs ?? 0) / 1000;
    if (run.outcome === 'failed') {
      found.failed++;
      found.durationFailed.observe(seconds);
    } else {
      found.succeeded++;
      found.durationSucceeded.observe(seconds);
    }
  });
}

/** The stream and group of every consumer the host runs. */
function consumerGroups(info: HostInfo): { stream: string; group: string }[] {
  const seen = new Map<string, { stream: string; group: string }>();
  for (const service of info.services) {
    for (const event of service.events) {
      if (event.kind === 'consumer')
        seen.set(`${event.stream.name}|${event.group}`, {
          stream: event.stream.name,
          group: event.group,
        });
    }
  }
  return [...seen.values()];
}

function registerStreamMetrics(info: HostInfo, registry: Registry, lagTimeoutMs: number): void {
  const counted = (name: string, help: string, field: 'delivered' | 'acked' | 'retried' | 'deadLettered'): void => {
    new Counter({
      name,
      help,
      labelNames: ['stream', 'group'],
      registers: [registry],
      // Read from the host's counters at scrape time: nothing is done per message for metrics.
      collect() {
        this.reset();
        for (const entry of info.streamCounters()) {
          if (entry.group !== undefined) this.inc({ stream: entry.stream, group: entry.group }, entry[field]);
        }
      },
    });
  };
  new Counter({
    name: 'gantry_stream_published_total',
    help: 'Messages this host published, by stream',
    labelNames: ['stream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const entry of info.streamCounters()) {
        if (entry.group === undefined) this.inc({ stream: entry.stream }, entry.published);
      }
    },
  });
  counted('gantry_stream_delivered_total', 'Deliveries to consumers of this host, by stream and group', 'delivered');
  counted('gantry_stream_acked_total', 'Messages acknowledged after their handler succeeded', 'acked');
  counted('gantry_stream_retried_total', 'Deliveries given back for a later retry after a failure', 'retried');
  counted('gantry_stream_dead_lettered_total', 'Messages moved to <stream>.dlq', 'deadLettered');
  new Gauge({
    name: 'gantry_stream_lag',
    help: 'Messages of the stream not yet acknowledged by the group, as the broker tells it at scrape time',
    labelNames: ['stream', 'group'],
    registers: [registry],
    async collect() {
      this.reset();
      const groups = consumerGroups(info);
      const answers = await Promise.all(
        groups.map(({ stream, group }) => withTimeout(info.streamStats(stream, group), lagTimeoutMs)),
      );
      answers.forEach((stats, index) => {
        const pair = groups[index];
        if (pair !== undefined && stats?.lag !== undefined) this.set(pair, stats.lag);
      });
    },
  });
}
