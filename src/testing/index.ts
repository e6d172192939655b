import type { Static, TSchema } from 'typebox';
import type { Envelope } from '../bus/envelope.ts';
import { createEnvelope } from '../bus/envelope.ts';
import { callsUnavailable } from '../calls/calls.ts';
import type { GantryEnv } from '../config/env.ts';
import { GantryError } from '../errors/gantry-error.ts';
import { createHost, type Host, type HostOptions } from '../host/host.ts';
import { createLogger } from '../log/logger.ts';
import type { Context } from '../service/context.ts';
import { type Metrics, noopMetrics } from '../service/metrics.ts';
import type { StreamDef } from '../service/stream.ts';
import { continueTracking } from '../tracking/trace-context.ts';
import { LogCapture, type LogLine } from './log-capture.ts';

export { LogCapture, type LogLine };

/** Options of {@link startTestHost}. */
export interface TestHostOptions extends Omit<HostOptions, 'env' | 'logDestination'> {
  /** Defaults to `test`: embedded data in memory, migrations applied at start. */
  env?: GantryEnv;
  /** Settings per service, winning over every config source. */
  settings?: Record<string, Record<string, unknown>>;
}

/** A host started in-process for tests, with what it logged and emitted at hand. */
export interface TestHost {
  readonly host: Host;
  readonly logs: LogCapture;
  /** Sends an HTTP request without a socket; JSON bodies are serialised for you. */
  request(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  /** Every message published on `stream` since start (by any hosted service), oldest first. */
  emitted<S extends TSchema>(stream: StreamDef<S>): Static<S>[];
  /** The full envelopes published on a stream. */
  envelopes(stream: string): Envelope[];
  /** Publishes a message as if another service had (it is validated by the consumers, not here). */
  publish<S extends TSchema>(stream: StreamDef<S> | string, data: unknown, options?: { key?: string }): Promise<void>;
  /** Resolves once `predicate` holds, polling; rejects after `timeoutMs` (default 5 s) naming what it waited for. */
  waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** An HTTP answer in a test. */
export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: unknown;
  text: string;
}

/**
 * Starts a host in-process on embedded defaults (in-memory bus, in-memory PGlite) with its logs captured.
 *
 * @example
 * const app = await startTestHost({ services: [customers] });
 * const res = await app.request('POST', '/customers', { name: 'Ada', email: 'ada@example.com' });
 * expect(res.status).toBe(201);
 */
export async function startTestHost(options: TestHostOptions): Promise<TestHost> {
  const logs = new LogCapture();
  const published: Envelope[] = [];
  const overrides = options.config ?? {};
  const services = { ...(overrides.services ?? {}) };
  for (const [name, settings] of Object.entries(options.settings ?? {})) {
    services[name] = { ...(services[name] ?? {}), settings: { ...(services[name]?.settings ?? {}), ...settings } };
  }
  const host = createHost({
    ...options,
    env: options.env ?? 'test',
    logDestination: logs,
    config: { ...overrides, host: { port: 0, ...(overrides.host ?? {}) }, services },
    environment: options.environment ?? {},
    plugins: [
      { name: 'test-capture', register: (api) => api.hook('onPublish', (info) => published.push(info.envelope)) },
      ...(options.plugins ?? []),
    ],
  });
  await host.start();
  return {
    host,
    logs,
    async request(method, url, body, headers = {}) {
      const response = await host.inject({
        method: method as 'GET',
        url,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      let parsed: unknown = response.body;
      try {
        parsed = response.body === '' ? undefined : JSON.parse(response.body);
      } catch {
        // Not JSON: keep the text.
      }
      return { status: response.statusCode, headers: response.headers, body: parsed, text: response.body };
    },
    emitted: (stream) =>
      published.filter((e) => e.type === stream.name).map((e) => e.data as Static<typeof stream.schema>),
    envelopes: (stream) => published.filter((e) => e.type === stream),
    async publish(stream, data, publishOptions = {}) {
      const name = typeof stream === 'string' ? stream : stream.name;
      const envelope = createEnvelope({
        stream: name,
        data,
        source: 'test@0.0.0',
        ...(publishOptions.key ? { key: publishOptions.key } : {}),
      });
      await host.messageBus.publish(name, envelope);
    },
    waitFor: (predicate, what, timeoutMs = 5_000) => waitFor(predicate, what, timeoutMs),
    async stop() {
      await host.stop();
    },
  };
}

/** Polls `predicate` every 10 ms until it holds; rejects after `timeoutMs` naming what it waited for. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A context for running one handler or step alone, recording what it emits. */
export interface TestContext<Settings, Drivers> extends Context<Settings, Drivers> {
  readonly emittedMessages: { stream: string; data: unknown; key?: string }[];
  /** The jobs the code under test enqueued (nothing runs them). */
  readonly enqueuedJobs: { task: string; input: unknown; key?: string }[];
}

/**
 * Builds a context to call a handler or a step directly, with no host (hopeit's test context).
 *
 * @example
 * const ctx = testContext({ settings: { pageSize: 5 } });
 * expect(await normaliseEmail({ email: 'A@B.C' }, ctx)).toEqual({ email: 'a@b.c' });
 */
export function testContext<Settings = Record<string, unknown>, Drivers = Record<string, unknown>>(
  options: {
    settings?: Settings;
    drivers?: Drivers;
    event?: string;
    service?: string;
    signal?: AbortSignal;
    /** What `ctx.metrics` records into; by default nothing. */
    metrics?: Metrics;
  } = {},
): TestContext<Settings, Drivers> {
  const emittedMessages: { stream: string; data: unknown; key?: string }[] = [];
  const enqueuedJobs: { task: string; input: unknown; key?: string }[] = [];
  return {
    service: { name: options.service ?? 'test', version: '0.0.0' },
    env: 'test',
    event: options.event ?? 'test',
    log: createLogger({ env: 'test', level: 'silent' }),
    tracking: continueTracking(),
    settings: (options.settings ?? {}) as Settings,
    drivers: (options.drivers ?? {}) as Drivers,
    signal: options.signal ?? new AbortController().signal,
    metrics: options.metrics ?? noopMetrics,
    emittedMessages,
    ...callsUnavailable('a test context'),
    enqueuedJobs,
    async enqueue(task, input, enqueueOptions) {
      enqueuedJobs.push({
        task: task.name,
        input,
        ...(enqueueOptions?.key !== undefined ? { key: enqueueOptions.key } : {}),
      });
      return { id: `test-job-${enqueuedJobs.length}`, deduplicated: false };
    },
    get jobs(): never {
      throw new GantryError('GANTRY_ERR_JOBS_UNAVAILABLE', 'a test context keeps no jobs; use startTestHost');
    },
    async emit(stream, data, emitOptions) {
      const key = emitOptions?.key ?? stream.key?.(data);
      emittedMessages.push({ stream: stream.name, data, ...(key !== undefined ? { key } : {}) });
    },
  };
}
