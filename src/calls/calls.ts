import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { SpanKind } from '@opentelemetry/api';
import type { TSchema } from 'typebox';
import type { Dispatcher } from 'undici';
import { SERVICE_TOKEN_HEADER, ServiceTokenVerifier } from '../auth/service-token.ts';
import type { Bus, CheckResult } from '../bus/bus.ts';
import { createEnvelope, type Envelope } from '../bus/envelope.ts';
import { GantryError, toGantryError, type WireError } from '../errors/gantry-error.ts';
import type { RunDeadlines } from '../host/deadlines.ts';
import type { HookRegistry } from '../host/hooks.ts';
import { runEvent } from '../host/run-event.ts';
import type { Logger } from '../log/logger.ts';
import { validatorFor } from '../schema/validate.ts';
import type { Context } from '../service/context.ts';
import { type AnyService, type RpcDef, workStreamName } from '../service/service.ts';
import { childTraceparent, continueTracking, type Tracking } from '../tracking/trace-context.ts';
import { timeWork } from '../tracking/work-spans.ts';
import type { CallContext } from './call-context.ts';
import { type CallPolicy, type CallsConfig, type ClientConfig, mergePolicy } from './config.ts';
import { ServiceCredentials } from './credentials.ts';
import { type HttpSender, type RouteCallDeps, serviceClient, undiciSender } from './http-client.ts';
import { type HttpApi, openApiClient } from './openapi-client.ts';
import { type TargetPolicy as Policy, TargetPolicy, type TargetStats } from './policy.ts';
import { type InstanceRecord, openRegistry, type Registry, RegistryMembership } from './registry.ts';
import { Balancer, dnsSource, type InstancePicker, registrySource, staticSource } from './resolver.ts';
import { hasRpc, openRpcTransport, type RpcResponder, type RpcTransport } from './rpc.ts';
import type {
  ApiOf,
  OpenApiClient,
  RequestOptions,
  RpcTarget,
  SendOptions,
  ServiceClient,
  WorkTarget,
} from './types.ts';
import { CALLER_HEADER, DEADLINE_HEADER, type RpcReplyWire, type RpcRequestWire, rpcSubject } from './wire.ts';

/** What handlers get on their context to call other services. */
export interface CallsApi {
  /**
   * A client of another service, typed from its definition (`ctx.client(customers).get('/customers/:id', ...)`),
   * or of a non-Gantry API described by an OpenAPI document (`ctx.client(payments).call('createCharge', ...)`).
   */
  client<S extends AnyService>(target: S): ServiceClient<ApiOf<S>>;
  client(target: HttpApi): OpenApiClient;
  /** Calls an RPC and resolves with its output; its error reply rejects as the coded error it carries. */
  request<I extends TSchema, O extends TSchema>(
    target: RpcTarget<I, O>,
    input: import('typebox').Static<I>,
    options?: RequestOptions<import('typebox').Static<O>>,
  ): Promise<import('typebox').Static<O>>;
  request(target: string, input: unknown, options?: RequestOptions): Promise<unknown>;
  /** Hands a message to a work queue: one instance handles it, after it is stored durably on the bus. */
  send<I extends TSchema>(
    target: WorkTarget<I>,
    input: import('typebox').Static<I>,
    options?: SendOptions,
  ): Promise<void>;
  send(target: string, input: unknown, options?: SendOptions): Promise<void>;
}

/** One hosted service as the calls runtime needs it. */
export interface CallsRuntime {
  readonly name: string;
  readonly service: AnyService;
  eventContext(event: string, tracking: Tracking, log: Logger, signal: AbortSignal, deadline?: number): Context;
}

/** Options of {@link HostCalls}. */
export interface HostCallsOptions {
  config: CallsConfig;
  /** The host's service secret: calls carry tokens signed with it, and RPCs are verified against it. */
  serviceSecret?: string;
  servicePreviousSecret?: string;
  serviceTokenMaxAgeSeconds?: number;
  busUrl: string;
  bus: () => Bus;
  log: Logger;
  hooks: HookRegistry;
  inFlight: RunDeadlines;
  eventTimeoutMs: number;
  /** Sends a request to a service hosted in this process without a socket. */
  inject?: HttpSender;
  /** Names of the services hosted in this process. */
  hosted: readonly string[];
  /** Tells the host's observers about a message sent to a work queue. */
  published?: (service: string, envelope: Envelope) => void;
}

/**
 * Everything about calls between services that a host owns: clients and their pools, policies per target, the RPC
 * transport and responders, the registry and this instance's entries in it, and the credentials calls carry.
 */
export class HostCalls {
  /** This process's instance id, unique even for two hosts in one process. */
  readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly credentials: ServiceCredentials;
  private readonly policies = new Map<string, TargetPolicy>();
  private readonly pickers = new Map<string, InstancePicker>();
  private readonly responders: RpcResponder[] = [];
  private transportPromise: Promise<RpcTransport> | undefined;
  private transport: RpcTransport | undefined;
  private registry: Registry | undefined;
  private membership: RegistryMembership | undefined;
  private agent: Dispatcher | undefined;
  private sender: HttpSender | undefined;
  private readonly verifier: ServiceTokenVerifier | undefined;

  private readonly options: HostCallsOptions;

  constructor(options: HostCallsOptions) {
    this.options = options;
    this.credentials = new ServiceCredentials(options.serviceSecret);
    this.verifier = options.serviceSecret
      ? new ServiceTokenVerifier({
          secrets: [options.serviceSecret, options.servicePreviousSecret].filter((s): s is string => Boolean(s)),
          maxAgeSeconds: options.serviceTokenMaxAgeSeconds ?? 300,
          clockSkewSeconds: 30,
        })
      : undefined;
  }

  /** The URL RPC travels on: `host.calls.rpc`, else the bus's when its broker has request/reply, else in-process. */
  get rpcUrl(): string {
    return this.options.config.rpc ?? (hasRpc(this.options.busUrl) ? this.options.busUrl : 'memory:');
  }

  /** Opens the registry, when one is configured. */
  async open(): Promise<void> {
    if (this.options.config.registry) this.registry = await openRegistry(this.options.config.registry);
  }

  /** The calls API of one event run. */
  forEvent(ctx: CallContext): CallsApi {
    return {
      client: ((target: AnyService | HttpApi) =>
        'kind' in target && target.kind === 'openapi'
          ? openApiClient(target, ctx, this.routeDeps(target.name))
          : serviceClient(
              target as AnyService,
              ctx,
              this.routeDeps((target as AnyService).info.name),
            )) as CallsApi['client'],
      request: ((target: RpcTarget | string, input: unknown, options?: RequestOptions) =>
        this.request(ctx, target, input, options)) as CallsApi['request'],
      send: ((target: WorkTarget | string, input: unknown, options?: SendOptions) =>
        this.send(ctx, target, input, options)) as CallsApi['send'],
    };
  }

  /** Starts answering the RPCs of the hosted services. */
  async serve(runtimes: readonly CallsRuntime[]): Promise<void> {
    const served = runtimes.flatMap((runtime) => [...runtime.service.rpcs.values()].map((def) => ({ runtime, def })));
    if (served.length === 0) return;
    const transport = await this.rpcTransport();
    for (const { runtime, def } of served) {
      this.responders.push(
        await transport.respond(rpcSubject(runtime.name, def.name), (body) => this.answer(runtime, def, body)),
      );
    }
    this.options.log.info(
      { rpc: served.map(({ runtime, def }) => `${runtime.name}.${def.name}`), transport: transport.kind },
      'answering RPCs',
    );
  }

  /** Registers the hosted services at `address` and keeps them registered, when a registry is configured. */
  async register(address: string, runtimes: readonly CallsRuntime[]): Promise<void> {
    if (!this.registry || runtimes.length === 0) return;
    const advertised = (this.options.config.advertiseUrl ?? address.replace('0.0.0.0', '127.0.0.1')).replace(/\/$/, '');
    const startedAt = new Date().toISOString();
    const records: InstanceRecord[] = runtimes.map((runtime) => ({
      service: runtime.name,
      version: runtime.service.info.version,
      instanceId: this.instanceId,
      address: advertised,
      events: [
        ...runtime.service.events.map((event) => event.name),
        ...[...runtime.service.rpcs.keys()].map((name) => `rpc ${name}`),
      ],
      startedAt,
    }));
    this.membership = new RegistryMembership(this.registry, records, this.options.config, this.options.log);
    await this.membership.start();
  }

  /** Leaves the registry and stops answering RPCs (those in hand are answered first). */
  async stopServing(): Promise<void> {
    await this.membership?.stop();
    this.membership = undefined;
    await Promise.all(this.responders.splice(0).map((r) => r.stop().catch(() => undefined)));
  }

  /** Closes the transport, the registry and the HTTP pools. */
  async close(): Promise<void> {
    await this.stopServing();
    const transport = this.transportPromise;
    this.transportPromise = undefined;
    if (transport) await (await transport.catch(() => undefined))?.close().catch(() => undefined);
    await this.registry?.close().catch(() => undefined);
    await this.agent?.close().catch(() => undefined);
  }

  /** The live instances in the registry (of one service, or all). */
  async instances(service?: string): Promise<InstanceRecord[]> {
    return this.registry ? this.registry.list(service) : [];
  }

  /** The breaker, in-flight and retry figures of every target called so far. */
  stats(): TargetStats[] {
    return [...this.policies.values()].map((policy) => policy.stats());
  }

  /**
   * The readiness check: the RPC transport when one is open. Open breakers are reported but do not fail readiness:
   * a downstream being down is no reason to take this instance out of rotation too.
   */
  async check(): Promise<CheckResult> {
    const open = this.stats().filter((s) => s.breaker !== 'closed');
    const breakers = open.length === 0 ? 'breakers closed' : open.map((s) => `${s.target}: ${s.breaker}`).join(', ');
    if (this.transport) {
      const transport = await this.transport.check();
      if (!transport.ok)
        return { ok: false, detail: `rpc ${this.transport.kind}: ${transport.detail ?? 'down'}; ${breakers}` };
    }
    return { ok: true, detail: breakers };
  }

  private rpcTransport(): Promise<RpcTransport> {
    this.transportPromise ??= openRpcTransport(this.rpcUrl, { instanceId: this.instanceId }).then((transport) => {
      this.transport = transport;
      return transport;
    });
    this.transportPromise.catch(() => {
      this.transportPromise = undefined;
    });
    return this.transportPromise;
  }

  private clientConfig(target: string): ClientConfig {
    return this.options.config.clients[target] ?? {};
  }

  /** The shared policy of a target (breaker, bulkhead, budget), made on first use. */
  private policy(key: string, target: string): Policy {
    let policy = this.policies.get(key);
    if (!policy) {
      policy = new TargetPolicy(
        key,
        mergePolicy(this.options.config.defaults, this.clientConfig(target)),
        this.options.log,
      );
      this.policies.set(key, policy);
    }
    return policy;
  }

  /** The settings of one operation: defaults, then the client's, then the operation's, then the call's timeout. */
  private settings(target: string, operation: string, timeout: number | undefined): CallPolicy {
    const client = this.clientConfig(target);
    return mergePolicy(
      this.options.config.defaults,
      client,
      client.calls?.[operation],
      timeout === undefined ? undefined : { timeoutMs: timeout },
    );
  }

  private routeDeps(target: string): RouteCallDeps {
    return {
      target,
      picker: this.picker(target),
      send: this.senderFor(target),
      policyOf: (operation, timeout) => ({
        policy: this.policy(target, target),
        settings: this.settings(target, operation, timeout),
      }),
      headersFor: (ctx, audience) => this.headers(ctx, audience),
    };
  }

  /** How instances of a target are found: its URL, the registry, or this very process. */
  private picker(target: string): InstancePicker {
    let picker = this.pickers.get(target);
    if (picker) return picker;
    const client = this.clientConfig(target);
    const url = client.url;
    const balance = client.balance ?? 'round-robin';
    if (url === undefined || url === 'discovery') {
      if (this.registry) picker = new Balancer(target, registrySource(this.registry, target), balance);
      else if (url === undefined && this.options.hosted.includes(target)) picker = localPicker;
      else {
        throw new GantryError(
          'GANTRY_ERR_CALL_UNKNOWN_TARGET',
          `no way to reach '${target}': set host.calls.clients.${target}.url or a registry (GANTRY_REGISTRY)`,
        );
      }
    } else if (url.startsWith('dns://') || url.startsWith('dns+https://')) {
      picker = new Balancer(target, dnsSource(new URL(url)), balance);
    } else {
      picker = new Balancer(target, staticSource(url.split(',')), balance);
    }
    this.pickers.set(target, picker);
    return picker;
  }

  private senderFor(target: string): HttpSender {
    if (this.picker(target) === localPicker && this.options.inject) return this.options.inject;
    if (!this.sender) {
      // undici is loaded on the first outbound HTTP call only; a host that never calls out never loads it.
      let loading: Promise<HttpSender> | undefined;
      const load = (): Promise<HttpSender> => {
        loading ??= import('undici').then(({ Agent }) => {
          this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 128, pipelining: 1 });
          const send = undiciSender(this.agent);
          this.sender = send;
          return send;
        });
        return loading;
      };
      return async (base, request, attempt) => (this.sender ?? (await load()))(base, request, attempt);
    }
    return this.sender;
  }

  /** The headers every outbound call carries: tracking ids, the caller, and the caller's credential. */
  private async headers(ctx: CallContext, audience: string): Promise<Record<string, string>> {
    const span = childTraceparent(ctx.tracking);
    return {
      'x-request-id': ctx.tracking.requestId,
      traceparent: span.traceparent,
      ...(ctx.tracking.tracestate ? { tracestate: ctx.tracking.tracestate } : {}),
      [CALLER_HEADER]: ctx.caller.name,
      ...(await this.credentials.headers(ctx.caller.name, audience)),
    };
  }

  private async request(
    ctx: CallContext,
    target: RpcTarget | string,
    input: unknown,
    options: RequestOptions = {},
  ): Promise<unknown> {
    const ref = typeof target === 'string' ? parseRpcTarget(target) : target;
    if (ref.schemas)
      check('GANTRY_ERR_CALL_INVALID_INPUT', `the input of ${ref.service}.${ref.name}`, ref.schemas.input, input);
    const transport = await this.rpcTransport();
    const subject = rpcSubject(ref.service, ref.name);
    const token = await this.credentials.token(ctx.caller.name, ref.service);
    return this.policy(`${ref.service} (rpc)`, ref.service).execute(
      async (attempt) => {
        // The client span of this attempt: the id its traceparent names is the parent of the answering run's span.
        const { spanId, traceparent } = childTraceparent(ctx.tracking);
        const wire: RpcRequestWire = {
          rpc: ref.name,
          input,
          meta: {
            requestId: ctx.tracking.requestId,
            traceparent,
            ...(ctx.tracking.tracestate ? { tracestate: ctx.tracking.tracestate } : {}),
            caller: ctx.caller.name,
            deadlineMs: attempt.timeoutMs,
            ...(token ? { token } : {}),
          },
        };
        const span = {
          name: `rpc ${ref.service}.${ref.name}`,
          kind: SpanKind.CLIENT,
          spanId,
          attributes: {
            'rpc.system': 'gantry',
            'rpc.service': ref.service,
            'rpc.method': ref.name,
            'gantry.call.target': ref.service,
            ...(attempt.attempt > 1 ? { 'gantry.call.attempt': attempt.attempt } : {}),
          },
        };
        return timeWork(ctx.tracking, span, async () => {
          const reply = JSON.parse(
            await transport.request(subject, JSON.stringify(wire), attempt.timeoutMs),
          ) as RpcReplyWire;
          if (!reply.ok) throw replyError(reply.error);
          if (ref.schemas) {
            check(
              'GANTRY_ERR_CALL_INVALID_RESPONSE',
              `the output of ${ref.service}.${ref.name}`,
              ref.schemas.output,
              reply.output,
            );
          }
          return reply.output;
        });
      },
      {
        policy: this.settings(ref.service, `rpc ${ref.name}`, options.timeout),
        idempotent: options.idempotent ?? false,
        ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}),
        signal: ctx.signal,
        ...(options.fallback ? { fallback: options.fallback } : {}),
      },
    );
  }

  private async send(
    ctx: CallContext,
    target: WorkTarget | string,
    input: unknown,
    options: SendOptions = {},
  ): Promise<void> {
    const ref = typeof target === 'string' ? parseWorkTarget(target) : target;
    if (ref.input)
      check('GANTRY_ERR_CALL_INVALID_INPUT', `the input of ${ref.service}'s work queue ${ref.name}`, ref.input, input);
    const stream = workStreamName(ref.service, ref.name);
    const envelope = createEnvelope({
      stream,
      data: input,
      source: `${ctx.caller.name}@${ctx.caller.version}`,
      tracking: { ...ctx.tracking, traceparent: childTraceparent(ctx.tracking).traceparent },
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    });
    await this.options.bus().publish(stream, envelope);
    this.options.published?.(ctx.caller.name, envelope);
  }

  /** Answers one RPC request; never throws: every failure is an error reply. */
  private async answer(runtime: CallsRuntime, def: RpcDef, body: string): Promise<string> {
    let wire: RpcRequestWire;
    try {
      wire = JSON.parse(body) as RpcRequestWire;
    } catch {
      return errorReply(new GantryError('GANTRY_ERR_HTTP_MALFORMED', 'the RPC request is not JSON'), runtime.name);
    }
    try {
      const auth = this.verifier
        ? await this.verifier.verify(wire.meta?.token ?? '', [runtime.name]).catch((error: unknown) => {
            throw toGantryError(error);
          })
        : undefined;
      if (this.verifier && !wire.meta?.token) {
        throw new GantryError(
          'GANTRY_ERR_AUTH_UNAUTHENTICATED',
          `RPC ${def.name} needs a service token (${SERVICE_TOKEN_HEADER})`,
        );
      }
      check('GANTRY_ERR_HTTP_VALIDATION', `the input of ${runtime.name}.${def.name}`, def.schemas.input, wire.input);
      const tracking = continueTracking({
        requestId: wire.meta?.requestId,
        traceparent: wire.meta?.traceparent,
        tracestate: wire.meta?.tracestate,
        caller: wire.meta?.caller,
      });
      const own = def.schemas.timeout ?? this.options.eventTimeoutMs;
      const left = typeof wire.meta?.deadlineMs === 'number' && wire.meta.deadlineMs > 0 ? wire.meta.deadlineMs : own;
      const timeoutMs = Math.min(own, left);
      const deadline = Date.now() + timeoutMs;
      const event = `rpc ${def.name}`;
      const value = await runEvent(
        {
          service: runtime.service.info,
          event,
          kind: 'rpc',
          tracking,
          timeoutMs,
          inFlight: this.options.inFlight,
          log: auth ? this.options.log.child({ subject: auth.subject }) : this.options.log,
          hooks: this.options.hooks,
          context: (log, signal) => {
            const ctx = runtime.eventContext(event, tracking, log, signal, deadline);
            return auth ? { ...ctx, auth } : ctx;
          },
          ...(wire.meta?.caller ? { fields: { caller: wire.meta.caller } } : {}),
        },
        (ctx) => def.handler(wire.input, ctx),
      );
      check('GANTRY_ERR_INTERNAL', `the output of ${runtime.name}.${def.name}`, def.schemas.output, value);
      return JSON.stringify({ ok: true, output: value } satisfies RpcReplyWire);
    } catch (error) {
      return errorReply(toGantryError(error), runtime.name);
    }
  }
}

/** Marks a service hosted in this process: calls go through the host's router without a socket. */
const localPicker: InstancePicker = {
  pick: async () => ({ url: 'http://in-process', release: () => undefined }),
};

function errorReply(error: GantryError, origin: string): string {
  return JSON.stringify({ ok: false, error: error.toWire(origin) } satisfies RpcReplyWire);
}

/**
 * The error an RPC's error reply carries, rebuilt from its code. It is the handler's answer, not a failure of the
 * call: the breaker does not count it and it is not retried.
 */
function replyError(wire: WireError): GantryError {
  const error = GantryError.fromWire(wire);
  Object.defineProperty(error, 'reply', { value: true });
  return error;
}

function check(
  code:
    | 'GANTRY_ERR_CALL_INVALID_INPUT'
    | 'GANTRY_ERR_CALL_INVALID_RESPONSE'
    | 'GANTRY_ERR_HTTP_VALIDATION'
    | 'GANTRY_ERR_INTERNAL',
  what: string,
  schema: TSchema,
  value: unknown,
): void {
  const validator = validatorFor(schema);
  if (validator.check(value)) return;
  const problems = validator.problems(value);
  throw new GantryError(code, `${what} is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, {
    details: problems,
  });
}

function parseRpcTarget(target: string): RpcTarget {
  const dot = target.indexOf('.');
  if (dot <= 0 || dot === target.length - 1) {
    throw new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `RPC target '${target}' is not '<service>.<rpc>'`);
  }
  return { kind: 'rpc', service: target.slice(0, dot), name: target.slice(dot + 1) };
}

function parseWorkTarget(target: string): WorkTarget {
  const dot = target.indexOf('.');
  if (dot <= 0 || dot === target.length - 1) {
    throw new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `work target '${target}' is not '<service>.<queue>'`);
  }
  return { kind: 'work', service: target.slice(0, dot), name: target.slice(dot + 1) };
}

/** The header names calls carry, for hosts that read them. */
export const CALL_HEADERS = { deadline: DEADLINE_HEADER, caller: CALLER_HEADER, token: SERVICE_TOKEN_HEADER } as const;

/**
 * The calls API where no host runs calls (a context built for a unit test): every use fails with a coded error that
 * says so. Tests of code that calls out start a host (`startTestHost`) or pass their own doubles.
 */
export function callsUnavailable(where: string): CallsApi {
  const refuse = (): Promise<never> =>
    Promise.reject(new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `no calls between services in ${where}`));
  return {
    client: (() => {
      throw new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `no calls between services in ${where}`);
    }) as CallsApi['client'],
    request: refuse as CallsApi['request'],
    send: refuse as CallsApi['send'],
  };
}
