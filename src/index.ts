/**
 * Gantry: define services with typed HTTP events, streams and steps; run them in a host.
 * @packageDocumentation
 */
export { requireRole } from './auth/guard.ts';
export type { AuthIdentity, AuthMethod } from './auth/identity.ts';
export type { AuthInput, AuthPredicate, AuthRequirement, EventAuth } from './auth/rules.ts';
export type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from './bus/bus.ts';
export type { DeadLetter } from './bus/consumer.ts';
export type { Envelope } from './bus/envelope.ts';
export { busSchemes, resolveBus } from './bus/resolve.ts';
export { GANTRY_ENVS, type GantryEnv } from './config/env.ts';
export type { HostConfig } from './config/host-config.ts';
export { type ConfigProblem, type ConfigTree, loadConfig, type ResolvedConfig } from './config/load.ts';
export { maskSecrets } from './config/mask.ts';
export type { Driver, DriverClients, DriverHandle, DriverMap, DriverOpenContext } from './drivers/driver.ts';
export { type ErrorCode, errorCodes } from './errors/codes.ts';
export { GantryError, isGantryError, type WireError } from './errors/gantry-error.ts';
export { badRequest, conflict, notFound } from './errors/http.ts';
export { defineHost, type HostDefinition } from './host/define.ts';
export type { DeadLetterInfo, EventRun, HookMap, HookName, PublishInfo } from './host/hooks.ts';
export { createHost, Host, type HostOptions, type HostState, type StopResult } from './host/host.ts';
export type { HostInfo } from './host/info.ts';
export type { HostPlugin, HostPluginApi } from './host/plugin.ts';
export type { OpenApiDocument } from './http/openapi.ts';
export { type Problem, ProblemSchema } from './http/problem.ts';
export type { Logger } from './log/logger.ts';
export { type Static, secret, type TSchema, t } from './schema/index.ts';
export type { Context, EmitOptions, ServiceContext, ServiceInfo } from './service/context.ts';
export {
  type EventRateLimit,
  type HttpInput,
  type HttpMethod,
  type HttpResult,
  type HttpSchemas,
  type Reply,
  type ResponseMap,
  reply,
} from './service/http-event.ts';
export type {
  CounterMetric,
  GaugeMetric,
  HistogramMetric,
  HistogramOptions,
  MetricLabels,
  Metrics,
} from './service/metrics.ts';
export {
  type AnyService,
  type ConsumerOptions,
  type ContextOf,
  type HttpHandler,
  type LoopOptions,
  type MessageInfo,
  Service,
  type ServiceOptions,
  type ServicePlugin,
  service,
} from './service/service.ts';
export { type Done, done, type FanOut, fanOut, type Pipeline, type Step, steps } from './service/steps.ts';
export { defineStream, type StreamDef, type StreamOptions } from './service/stream.ts';
export type { Tracking } from './tracking/trace-context.ts';
