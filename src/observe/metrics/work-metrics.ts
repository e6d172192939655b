import { Counter, Gauge, type Registry } from 'prom-client';
import type { BreakerState } from '../../calls/policy.ts';
import type { EventRun } from '../../host/hooks.ts';
import type { HostInfo } from '../../host/info.ts';
import type { HostPluginApi } from '../../host/plugin.ts';
import { JOB_STATES } from '../../jobs/job-store.ts';
import { withTimeout } from '../timeout.ts';
import { CountedHistogram, type CountedSeries } from './counted-histogram.ts';

const BREAKER_STATES: readonly BreakerState[] = ['closed', 'half-open', 'open'];

/**
 * The metrics of work besides requests and messages: calls to other services (outcomes and circuit breakers), jobs
 * (how many in each state, and how long they waited once due) and the transactional outbox (messages waiting to be
 * relayed). Counts and states are read from the host at scrape time, so nothing is done per call for them; what the
 * stores must be asked (jobs, outbox) is waited for at most `timeoutMs` per scrape.
 */
export function registerWorkMetrics(
  api: HostPluginApi,
  registry: Registry,
  buckets: number[],
  timeoutMs: number,
): void {
  const { info } = api;
  registerCallMetrics(info, registry);
  registerJobMetrics(api, registry, buckets, timeoutMs);
  new Gauge({
    name: 'gantry_outbox_backlog',
    help: 'Messages committed to the outbox of a service and not yet relayed to the bus, at scrape time',
    labelNames: ['service'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { service, unsent } of (await withTimeout(info.outboxBacklog(), timeoutMs)) ?? []) {
        this.inc({ service }, unsent);
      }
    },
  });
}

function registerCallMetrics(info: HostInfo, registry: Registry): void {
  new Counter({
    name: 'gantry_call_outcomes_total',
    help: 'Calls to other services by target and outcome: succeeded, failed (after every attempt), fell_back',
    labelNames: ['target', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of info.callStats()) {
        this.inc({ target: stats.target, outcome: 'succeeded' }, stats.succeeded);
        this.inc({ target: stats.target, outcome: 'failed' }, stats.failed);
        this.inc({ target: stats.target, outcome: 'fell_back' }, stats.fellBack);
      }
    },
  });
  new Gauge({
    name: 'gantry_call_breaker_state',
    help: 'The circuit breaker of each call target: 1 for the state it is in (closed, half-open, open), 0 for others',
    labelNames: ['target', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of info.callStats()) {
        for (const state of BREAKER_STATES) this.set({ target: stats.target, state }, stats.breaker === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'gantry_calls_in_flight',
    help: 'Calls to each target under way now',
    labelNames: ['target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const stats of info.callStats()) this.set({ target: stats.target }, stats.inFlight);
    },
  });
}

function registerJobMetrics(api: HostPluginApi, registry: Registry, buckets: number[], timeoutMs: number): void {
  const { info } = api;
  new Gauge({
    name: 'gantry_jobs',
    help: 'Jobs of each task by state (finished ones while their store keeps them), at scrape time',
    labelNames: ['service', 'task', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await withTimeout(info.jobCounts(), timeoutMs);
      if (counts === undefined) return;
      // Every state of a task that has jobs, zeros included, so a queue that empties reads 0 rather than vanishing.
      const tasks = new Set(counts.map((count) => `${count.service}\u0000${count.task}`));
      for (const key of tasks) {
        const [service, task] = key.split('\u0000') as [string, string];
        for (const state of JOB_STATES) this.set({ service, task, state }, 0);
      }
      for (const { service, task, state, count } of counts) this.set({ service, task, state }, count);
    },
  });
  const queued = new CountedHistogram({
    name: 'gantry_job_queue_seconds',
    help: 'How long jobs waited to start once due, by task',
    labelNames: ['service', 'task'],
    buckets,
    registers: [registry],
  });
  const series = new Map<string, CountedSeries>();
  api.hook('onEventStart', (run: EventRun) => {
    if (run.job === undefined) return;
    const key = `${run.service.name}\u0000${run.job.task}`;
    let found = series.get(key);
    if (found === undefined) {
      found = queued.series({ service: run.service.name, task: run.job.task });
      series.set(key, found);
    }
    found.observe(run.job.queuedMs / 1000);
  });
}
