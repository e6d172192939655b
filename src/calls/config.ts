import Type, { type Static } from 'typebox';

/**
 * The resilience policy of outbound calls: what `host.calls.defaults`, each client and each of its calls may set. A
 * client's values override the defaults, a call's override its client's.
 */
export const CallPolicySchema = Type.Object({
  /** Longest time one attempt may take, in ms; the caller's remaining deadline shortens it further. */
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Attempts in all, the first included; 1 turns retries off. */
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })),
  /** First retry delay in ms, doubling each attempt (with jitter) up to `maxDelayMs`. */
  initialDelayMs: Type.Optional(Type.Integer({ minimum: 0 })),
  maxDelayMs: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Retry calls that are not idempotent too (POST, PATCH, RPC); off by default. */
  retryNonIdempotent: Type.Optional(Type.Boolean()),
  /** Retries allowed per first attempt, over a sliding 10 s window (0.2 = at most one retry per five calls). */
  retryBudgetRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** Retries always allowed per second whatever the ratio, so that a quiet client can still retry. */
  retryBudgetMinPerSecond: Type.Optional(Type.Number({ minimum: 0 })),
  /** The breaker opens after this many failures in a row (transport errors, timeouts, 5xx). */
  breakerConsecutiveFailures: Type.Optional(Type.Integer({ minimum: 1 })),
  /** ... or when this share of calls fail over `breakerWindowMs` (with at least `breakerMinimumRps` calls a second). */
  breakerFailureRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  breakerWindowMs: Type.Optional(Type.Integer({ minimum: 100 })),
  breakerMinimumRps: Type.Optional(Type.Number({ minimum: 0 })),
  /** How long an open breaker fails fast before it lets one probe through (half-open), in ms. */
  breakerHalfOpenAfterMs: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Calls to one target under way at once; 0 for no limit. */
  bulkheadLimit: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Calls waiting for a slot once the bulkhead is full; more are refused at once. */
  bulkheadQueue: Type.Optional(Type.Integer({ minimum: 0 })),
});

/** A policy as written in config: every field optional. */
export type CallPolicyConfig = Static<typeof CallPolicySchema>;

/** A policy with every field set: the defaults merged with a client's and a call's own. */
export type CallPolicy = Required<CallPolicyConfig>;

/** The policy every call has unless config says otherwise. */
export const DEFAULT_POLICY: CallPolicy = {
  timeoutMs: 10_000,
  maxAttempts: 3,
  initialDelayMs: 50,
  maxDelayMs: 1_000,
  retryNonIdempotent: false,
  retryBudgetRatio: 0.2,
  retryBudgetMinPerSecond: 1,
  breakerConsecutiveFailures: 5,
  breakerFailureRate: 0.5,
  breakerWindowMs: 10_000,
  breakerMinimumRps: 5,
  breakerHalfOpenAfterMs: 5_000,
  bulkheadLimit: 0,
  bulkheadQueue: 0,
};

/** One client: where its target is and how calls to it behave. */
export const ClientConfigSchema = Type.Object({
  ...CallPolicySchema.properties,
  /**
   * Where the target is: base URLs separated by commas (`http://10.0.0.5:8080,http://10.0.0.6:8080`), a DNS name
   * whose addresses are all used (`dns://customers.internal:8080`), or `discovery` (the registry). Unset: the
   * registry when one is configured, else the target's own process when it is hosted here.
   */
  url: Type.Optional(Type.String()),
  /** How an instance is picked among several: `round-robin` (default) or `least-in-flight`. */
  balance: Type.Optional(Type.Union([Type.Literal('round-robin'), Type.Literal('least-in-flight')])),
  /** A policy per call, keyed by operation (`GET /customers/:id`, an RPC's name, an OpenAPI operationId). */
  calls: Type.Optional(Type.Record(Type.String(), CallPolicySchema)),
});

/** The config of one client. */
export type ClientConfig = Static<typeof ClientConfigSchema>;

/**
 * The `host.calls` settings: the registry, the RPC transport, the default policy and one entry per client.
 *
 * @example
 * # config/prod.yaml
 * host:
 *   calls:
 *     registry: redis://cache:6379
 *     defaults: { timeoutMs: 2000 }
 *     clients:
 *       customers: { url: discovery, maxAttempts: 2, calls: { 'GET /customers/:id': { timeoutMs: 500 } } }
 *       payments: { url: https://payments.example.com }
 */
export const CallsConfigSchema = Type.Object(
  {
    /**
     * Where instances register and are looked up: `redis://`, `postgres://`, or `memory:` (this process only).
     * Unset: no registry, so clients need URLs (or targets hosted in the same process).
     */
    registry: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_REGISTRY' })),
    /** How often an instance renews its entry, in ms. */
    heartbeatMs: Type.Integer({ minimum: 50, default: 1_000, 'x-gantry-env': 'GANTRY_REGISTRY_HEARTBEAT_MS' }),
    /** How long an entry lives without a heartbeat: an instance that stops renewing is dropped after this, in ms. */
    ttlMs: Type.Integer({ minimum: 100, default: 3_000, 'x-gantry-env': 'GANTRY_REGISTRY_TTL_MS' }),
    /** The base URL other instances reach this one at; unset, the listening address (0.0.0.0 as the host name). */
    advertiseUrl: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_ADVERTISE_URL' })),
    /**
     * Where RPC requests travel: `nats://`, `amqp://`, `redis://`, or `memory:` (this process only). Unset: the bus
     * URL when its broker has request/reply, else in this process.
     */
    rpc: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_RPC' })),
    /** The policy of every call unless its client or the call sets its own. */
    defaults: Type.Object(CallPolicySchema.properties, { default: {}, 'x-gantry-env': 'GANTRY_CALLS_DEFAULTS' }),
    /** The clients by name (a service's name, or the name an OpenAPI client was given); JSON in `GANTRY_CALLS_CLIENTS`. */
    clients: Type.Record(Type.String(), ClientConfigSchema, { default: {}, 'x-gantry-env': 'GANTRY_CALLS_CLIENTS' }),
  },
  { default: {} },
);

/** The resolved `host.calls` settings. */
export type CallsConfig = Static<typeof CallsConfigSchema>;

/** A policy from the defaults, then a client's own values, then a call's own. */
export function mergePolicy(...layers: (CallPolicyConfig | undefined)[]): CallPolicy {
  const merged: Record<string, unknown> = { ...DEFAULT_POLICY };
  for (const layer of layers) {
    if (!layer) continue;
    for (const key of Object.keys(CallPolicySchema.properties)) {
      const value = (layer as Record<string, unknown>)[key];
      if (value !== undefined) merged[key] = value;
    }
  }
  return merged as CallPolicy;
}
