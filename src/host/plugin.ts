import type { FastifyInstance } from 'fastify';
import type { CheckResult } from '../bus/bus.ts';
import type { Logger } from '../log/logger.ts';
import type { ServiceInfo } from '../service/context.ts';
import type { Metrics } from '../service/metrics.ts';
import type { HookMap, HookName } from './hooks.ts';
import type { HostInfo } from './info.ts';

/** What a host plugin can do while it registers. */
export interface HostPluginApi {
  /** Adds an observer or lifecycle hook. */
  hook<K extends HookName>(name: K, fn: HookMap[K]): void;
  /** Adds routes to the host's HTTP server (e.g. `/metrics`), beside the services' own. */
  routes(register: (app: FastifyInstance) => void): void;
  /** Adds a readiness check: `/health/ready` answers 503 while it fails. */
  check(name: string, fn: () => Promise<CheckResult>): void;
  /** Gives handlers their `ctx.metrics`: called once per hosted service at start. The last plugin to call it wins. */
  metrics(provider: (service: ServiceInfo) => Metrics): void;
  /** The host's logger, for what the plugin has to say. */
  readonly log: Logger;
  /** The running host's services, env and counters. */
  readonly info: HostInfo;
}

/**
 * A host plugin: a plain function called once before the host starts. Metrics, the dashboard and auth plug in here.
 *
 * @example
 * const requestCounter: HostPlugin = { name: 'count', register: (api) => api.hook('onEventEnd', () => count++) };
 */
export interface HostPlugin {
  name: string;
  register(api: HostPluginApi): void | Promise<void>;
}
