import { SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventRun, PublishInfo } from '../../host/hooks.ts';
import type { HostPlugin } from '../../host/plugin.ts';
import { requestTracking } from '../../http/server.ts';
import type { AnyService } from '../../service/service.ts';
import { continueTracking, type Tracking } from '../../tracking/trace-context.ts';
import { methodLabel, routeLabel, UNMATCHED_ROUTE, underAny } from '../http-labels.ts';
import { type OtlpEnvironment, openOtlpExporter, otlpTracesUrl } from './exporter.ts';
import { emitSpan, SpanAttributes, type SpanSink } from './span.ts';
import { SpanStore, type SpanStoreOptions } from './span-store.ts';
import { emitWorkSpans } from './work-span.ts';

/** Options of {@link tracingPlugin}. */
export interface TracingOptions {
  /** `service.name` of the exported resource; default `OTEL_SERVICE_NAME`, then the hosted services' names. */
  serviceName?: string;
  /**
   * Where spans go besides the in-process store. Default: OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
   * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, else nowhere. Tests pass an `InMemorySpanExporter`.
   */
  exporter?: SpanExporter;
  /** Batch spans before export (default); false exports each span as it ends (tests). */
  batch?: boolean;
  /** The variables read for OTLP settings; default `process.env`. */
  environment?: OtlpEnvironment;
  /** Request paths not traced (by prefix); default health, `/metrics` and the dashboard. */
  ignorePaths?: readonly string[];
  /** How many recent traces the in-process store keeps for the dashboard. */
  store?: SpanStoreOptions;
}

/** The tracing plugin: a host plugin with the in-process store of recent traces. */
export interface TracingPlugin extends HostPlugin {
  /** The most recent traces of this host (the dashboard's waterfall reads them). */
  readonly store: SpanStore;
  /** Exports the spans still batched. */
  flush(): Promise<void>;
}

/** Span attribute names Gantry adds beside OpenTelemetry's semantic conventions. */
export const SPAN_ATTRIBUTES = {
  service: 'gantry.service',
  version: 'gantry.service.version',
  event: 'gantry.event',
  kind: 'gantry.event.kind',
  outcome: 'gantry.outcome',
  requestId: 'gantry.request_id',
} as const;

const DEFAULT_IGNORED = ['/health/', '/metrics', '/_gantry'];
const MAX_PATH_LENGTH = 1024;

/**
 * Traces the host with OpenTelemetry, continuing the W3C trace each event already carries: a span per event run whose
 * ids are the ones in the event's log lines (for an HTTP event, the server span of its request), a server span for
 * each other request, a producer span per published message (whose id the message's `traceparent` names), and a
 * consumer span per handled message as its child. Spans go to an OTLP endpoint when one is configured and always to
 * an in-process store of recent traces.
 *
 * Spans are built when their work ends, from the hooks' timings: nothing runs on the request path before the answer
 * is ready, and no global tracer, context manager or propagator is installed. The caller's sampled flag is honoured;
 * traces begun here are all kept (sample further in the collector).
 *
 * @example
 * const tracing = tracingPlugin(); // OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
 * createHost({ services, plugins: [tracing] });
 */
export function tracingPlugin(options: TracingOptions = {}): TracingPlugin {
  const store = new SpanStore(options.store);
  const processors: SpanProcessor[] = [store];
  return {
    name: 'tracing',
    store,
    flush: async () => {
      await Promise.all(processors.map((processor) => processor.forceFlush()));
    },
    async register(api) {
      const environment = options.environment ?? process.env;
      let exporter = options.exporter;
      const url = otlpTracesUrl(environment);
      if (exporter === undefined && url !== undefined) {
        exporter = await openOtlpExporter(url, environment);
        api.log.info({ url }, 'exporting traces over OTLP');
      }
      if (exporter !== undefined) {
        processors.push(options.batch === false ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter));
      }
      const sink: SpanSink = {
        resource: resourceFromAttributes({
          'service.name':
            options.serviceName ??
            environment.OTEL_SERVICE_NAME ??
            api.info.services.map((service) => service.info.name).join('+'),
          'deployment.environment.name': api.info.env,
        }),
        scope: { name: 'gantry' },
        onEnd: (span: ReadableSpan) => {
          for (const processor of processors) processor.onEnd(span);
        },
      };
      const spans = new SpanBuilder(sink, consumersOf(api.info.services));
      const ignored = options.ignorePaths ?? DEFAULT_IGNORED;
      api.hook('onEventEnd', (run) => spans.event(run));
      api.hook('onPublish', (info) => spans.publish(info));
      api.routes((app) => {
        app.addHook('onResponse', (request, reply, done) => {
          if (!underAny(request.url, ignored)) spans.http(request, reply);
          done();
        });
      });
      api.hook('onStop', async () => {
        await Promise.all(processors.map((processor) => processor.shutdown()));
      });
    },
  };
}

interface ConsumerInfo {
  stream: string;
  group: string;
}

/** Stream and group of every consumer event, by `service|event`. */
function consumersOf(services: readonly AnyService[]): Map<string, ConsumerInfo> {
  const consumers = new Map<string, ConsumerInfo>();
  for (const service of services) {
    for (const event of service.events) {
      if (event.kind === 'consumer') {
        consumers.set(`${service.info.name}|${event.name}`, { stream: event.stream.name, group: event.group });
      }
    }
  }
  return consumers;
}

/**
 * Where the run of an HTTP event waits for its request's answer to be sent: on its tracking, under a key no one else
 * uses, so nothing is kept per request beside the request itself.
 */
const PENDING_RUN = Symbol('gantry.tracing.run');

type TrackingWithRun = Tracking & { [PENDING_RUN]?: EventRun };

/** Builds finished spans from what the hooks report, with the host's ids. */
class SpanBuilder {
  private readonly sink: SpanSink;
  private readonly consumers: Map<string, ConsumerInfo>;

  constructor(sink: SpanSink, consumers: Map<string, ConsumerInfo>) {
    this.sink = sink;
    this.consumers = consumers;
  }

  /**
   * A span per event run (loops excepted: a loop runs for the host's lifetime, too long for a span). The run of an
   * HTTP event is the server span of its request, built when the answer is sent ({@link http}): one span per request
   * rather than a server span and an event span under it, which cost twice the work for no more insight.
   */
  event(run: EventRun): void {
    if (run.kind === 'loop') return;
    const { tracking } = run;
    const flags = traceFlags(tracking.traceparent);
    emitWorkSpans(this.sink, tracking, flags);
    if (run.kind === 'http') {
      (tracking as TrackingWithRun)[PENDING_RUN] = run;
      return;
    }
    const attributes = runAttributes(run);
    const consumer = run.kind === 'consumer' ? this.consumers.get(`${run.service.name}|${run.event}`) : undefined;
    if (consumer !== undefined) {
      attributes['messaging.operation.type'] = 'process';
      attributes['messaging.destination.name'] = consumer.stream;
      attributes['messaging.consumer.group.name'] = consumer.group;
    }
    emitSpan(this.sink, {
      name: `${run.service.name} ${run.event}`,
      kind: run.kind === 'consumer' ? SpanKind.CONSUMER : SpanKind.INTERNAL,
      traceId: tracking.traceId,
      spanId: tracking.spanId,
      parentSpanId: tracking.parentSpanId,
      traceFlags: flags,
      startMs: run.startedAt,
      endMs: run.startedAt + (run.durationMs ?? 0),
      attributes,
      failure: runFailure(run),
    });
  }

  /** A producer span per message published by a handler; the message's `traceparent` names it. */
  publish(info: PublishInfo): void {
    const parsed = parseTraceparent(info.envelope.traceparent);
    if (parsed === undefined) return;
    const startMs = info.startedAt ?? Date.now();
    const attributes = new SpanAttributes();
    attributes['messaging.operation.type'] = 'send';
    attributes['messaging.destination.name'] = info.stream;
    attributes['messaging.message.id'] = info.envelope.id;
    attributes[SPAN_ATTRIBUTES.service] = info.service.name;
    attributes[SPAN_ATTRIBUTES.version] = info.service.version;
    if (info.envelope.requestid !== undefined) attributes[SPAN_ATTRIBUTES.requestId] = info.envelope.requestid;
    emitSpan(this.sink, {
      name: `publish ${info.stream}`,
      kind: SpanKind.PRODUCER,
      traceId: parsed.traceId,
      spanId: parsed.spanId,
      // Unknown only when an outbox relays what another instance (or an earlier run) stored.
      parentSpanId: info.parentSpanId,
      traceFlags: parsed.flags,
      startMs,
      endMs: startMs + (info.durationMs ?? 0),
      attributes,
    });
  }

  /**
   * The server span of one HTTP request. For a request that ran an event it is that event's span: its ids are the
   * ones in the event's log lines, and it carries the event's attributes and failure beside the HTTP ones.
   */
  http(request: FastifyRequest, reply: FastifyReply): void {
    const endMs = Date.now();
    // Whole milliseconds, rounded down, like the event's start (Date.now()): the span never starts after its event.
    const startMs = Math.floor(endMs - reply.elapsedTime);
    const route = routeLabel(request);
    const method = methodLabel(request);
    const status = reply.statusCode;
    const ran = requestTracking(request) as TrackingWithRun | undefined;
    const run = ran?.[PENDING_RUN];
    const attributes = run === undefined ? new SpanAttributes() : runAttributes(run);
    attributes['http.request.method'] = method;
    attributes['http.response.status_code'] = status;
    attributes['url.path'] = urlPath(request.url);
    attributes[SPAN_ATTRIBUTES.requestId] = request.id;
    if (route !== UNMATCHED_ROUTE) attributes['http.route'] = route;
    // A request that never reached an event (rejected early, or a host route) still continues the caller's trace.
    const sent = request.headers.traceparent;
    const tracking =
      ran ?? continueTracking({ requestId: request.id, ...(typeof sent === 'string' ? { traceparent: sent } : {}) });
    emitSpan(this.sink, {
      name: route === UNMATCHED_ROUTE ? method : `${method} ${route}`,
      kind: SpanKind.SERVER,
      traceId: tracking.traceId,
      spanId: tracking.spanId,
      parentSpanId: tracking.parentSpanId,
      traceFlags: traceFlags(tracking.traceparent),
      startMs,
      endMs,
      attributes,
      failure: (run && runFailure(run)) ?? (status >= 500 ? { message: `HTTP ${status}` } : undefined),
    });
  }
}

/** The attributes every event span has: who ran it, its kind, outcome and status, and the request id. */
function runAttributes(run: EventRun): SpanAttributes {
  const attributes = new SpanAttributes();
  attributes[SPAN_ATTRIBUTES.service] = run.service.name;
  attributes[SPAN_ATTRIBUTES.version] = run.service.version;
  attributes[SPAN_ATTRIBUTES.event] = run.event;
  attributes[SPAN_ATTRIBUTES.kind] = run.kind;
  attributes[SPAN_ATTRIBUTES.requestId] = run.tracking.requestId;
  if (run.outcome !== undefined) attributes[SPAN_ATTRIBUTES.outcome] = run.outcome;
  if (run.status !== undefined) attributes['http.response.status_code'] = run.status;
  return attributes;
}

/** The failure a run's span records: 5xx answers and crashes. A refused request (4xx) is the caller's problem. */
function runFailure(run: EventRun): { message: string; error: unknown } | undefined {
  const failed = run.outcome === 'failed' && (run.status === undefined || run.status >= 500);
  return failed ? { message: errorMessage(run.error, run.status), error: run.error } : undefined;
}

/** The path of a request URL, without its query, at most {@link MAX_PATH_LENGTH} long; no array is made. */
function urlPath(url: string): string {
  const query = url.indexOf('?');
  return url.slice(0, Math.min(query === -1 ? url.length : query, MAX_PATH_LENGTH));
}

/** The trace flags of a traceparent (its last two hex digits). */
function traceFlags(traceparent: string): number {
  return traceparent.endsWith('01') ? 1 : Number.parseInt(traceparent.slice(-2), 16) || 0;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function parseTraceparent(value: string | undefined): { traceId: string; spanId: string; flags: number } | undefined {
  const match = value === undefined ? null : TRACEPARENT.exec(value.trim());
  if (match === null) return undefined;
  return { traceId: match[1] as string, spanId: match[2] as string, flags: Number.parseInt(match[3] as string, 16) };
}

function errorMessage(error: unknown, status: number | undefined): string {
  if (error instanceof Error) return error.message;
  return status !== undefined ? `status ${status}` : 'failed';
}
