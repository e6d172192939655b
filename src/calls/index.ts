/**
 * Calls between services: typed HTTP clients (`ctx.client(service)`), clients of OpenAPI-described APIs
 * (`httpApi`), RPC and work queues over the bus (`rpcTarget`, `workTarget`), resilience policies (timeouts, retries
 * with a budget, circuit breakers, bulkheads, fallbacks), service discovery, and service-to-service credentials.
 * See docs/calls.md.
 * @packageDocumentation
 */
export type { CallsApi, CallsRuntime, HostCallsOptions } from './calls.ts';
export { CALL_HEADERS, callsUnavailable, HostCalls } from './calls.ts';
export type { CallPolicy, CallPolicyConfig, CallsConfig, ClientConfig } from './config.ts';
export { CallPolicySchema, CallsConfigSchema, ClientConfigSchema, DEFAULT_POLICY, mergePolicy } from './config.ts';
export { ServiceCredentials } from './credentials.ts';
export { type HttpApi, httpApi, type OpenApiSource } from './openapi-client.ts';
export { type Attempt, type BreakerState, countsAgainstBreaker, TargetPolicy, type TargetStats } from './policy.ts';
export {
  type InstanceRecord,
  MemoryRegistry,
  openRegistry,
  type Registry,
  RegistryMembership,
  registrySchemes,
} from './registry.ts';
export { type BalanceMode, Balancer, dnsSource, type Endpoint, type InstancePicker, staticSource } from './resolver.ts';
export { RetryBudget } from './retry-budget.ts';
export {
  MemoryRpcTransport,
  openRpcTransport,
  type RpcResponder,
  type RpcTransport,
  type RpcTransportOptions,
  rpcSchemes,
} from './rpc.ts';
export { type RpcInput, type RpcOutput, rpcTarget, workTarget } from './targets.ts';
export type {
  ApiOf,
  CallAnswer,
  CallArgs,
  CallInput,
  CallOptions,
  CallResult,
  OpenApiAnswer,
  OpenApiCallInput,
  OpenApiClient,
  RequestOptions,
  RpcTarget,
  SendOptions,
  ServiceClient,
  WorkTarget,
} from './types.ts';
export {
  DEADLINE_HEADER,
  parseDeadline,
  type RpcMeta,
  type RpcReplyWire,
  type RpcRequestWire,
  rpcSubject,
} from './wire.ts';
