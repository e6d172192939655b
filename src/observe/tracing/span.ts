import {
  type Attributes,
  type AttributeValue,
  type HrTime,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** What one finished span is made of: every id and time is known before it is built. */
export interface SpanFields {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  /** The parent span, when there is one (in this process or the caller's). */
  parentSpanId?: string | undefined;
  /** W3C trace flags of the trace (1 = sampled). */
  traceFlags: number;
  /** Epoch milliseconds. */
  startMs: number;
  endMs: number;
  attributes: Attributes;
  /** Marks the span failed with this message, and records `error` as an `exception` event when it is an Error. */
  failure?: { message: string; error?: unknown } | undefined;
}

/** Where finished spans go: the resource and scope every span names, and the processors that take them. */
export interface SpanSink {
  resource: ReadableSpan['resource'];
  scope: ReadableSpan['instrumentationScope'];
  onEnd(span: ReadableSpan): void;
}

/**
 * The attributes of a span Gantry builds. A class rather than an object literal, like every object a finished span
 * holds: V8 may decide that the objects made by one literal live long (batched spans do, for a while) and allocate
 * them in the old generation from then on. A span's attributes made there point at strings of the request, which
 * young collections must then keep until the next full one: measured under load, about 0.8 MB promoted per young
 * collection, and a fifth more CPU per request. Instances of a class are not allocated that way.
 */
export class SpanAttributes {
  [key: string]: AttributeValue | undefined;
}

/** The ids of a finished span, a class for the reason given at {@link SpanAttributes}. */
class SpanIds implements SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;

  constructor(traceId: string, spanId: string, traceFlags: number) {
    this.traceId = traceId;
    this.spanId = spanId;
    this.traceFlags = traceFlags;
  }
}

const OK: SpanStatus = { code: SpanStatusCode.UNSET };
// Most spans have no links or events: they share these (frozen, so no exporter can add to them).
const NO_LINKS: ReadableSpan['links'] = Object.freeze([]) as unknown as ReadableSpan['links'];
const NO_EVENTS: ReadableSpan['events'] = Object.freeze([]) as unknown as ReadableSpan['events'];

/**
 * Builds a finished OpenTelemetry span from what the host's hooks report and hands it to the span processors.
 *
 * Written by hand rather than through the SDK's tracer because every id and time is known when the work ends: the
 * host drew the ids (they are in the log lines) and the hooks report start and duration. The tracer would draw ids and
 * clock readings only to have them replaced, at about 3 µs a span against 0.7 µs for this on the machine the
 * benchmark runs on; the processors, exporters and resource are the SDK's, unchanged.
 */
export function emitSpan(sink: SpanSink, fields: SpanFields): void {
  // Honour the trace's sampled flag, as the SDK's parent-based sampler does; nothing is built for dropped traces.
  if ((fields.traceFlags & TraceFlags.SAMPLED) === 0) return;
  sink.onEnd(new FinishedSpan(sink, fields));
}

/**
 * A finished span as the SDK's processors and exporters read it. A class rather than an object literal: its
 * `spanContext` method is shared, so building one allocates no closure (a closure per span costs a lot more than it
 * looks once a loader wraps every function to keep its name).
 */
class FinishedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly events: ReadableSpan['events'];
  // What is the same for every span (links, counts, resource and scope) is read through the prototype: a span has
  // fewer fields to fill, and a smaller object to carry while the batch processor holds it.
  private readonly sink: SpanSink;
  private readonly context: SpanContext;
  // Times and the parent's context are read by exporters (once a batch is sent) and the dashboard, not by the span
  // processors' onEnd: kept as numbers and built when read, which spares four objects per span on the request path.
  private readonly startMs: number;
  private readonly endMs: number;
  private readonly parentSpanId: string | undefined;

  constructor(sink: SpanSink, fields: SpanFields) {
    this.name = fields.name;
    this.kind = fields.kind;
    this.context = new SpanIds(fields.traceId, fields.spanId, fields.traceFlags);
    this.parentSpanId = fields.parentSpanId;
    this.startMs = fields.startMs;
    this.endMs = fields.endMs;
    this.attributes = fields.attributes;
    this.sink = sink;
    let status = OK;
    let events = NO_EVENTS;
    if (fields.failure !== undefined) {
      status = { code: SpanStatusCode.ERROR, message: fields.failure.message };
      const error = fields.failure.error;
      if (error instanceof Error) {
        const attributes: Attributes = { 'exception.type': error.name, 'exception.message': error.message };
        if (error.stack !== undefined) attributes['exception.stacktrace'] = error.stack;
        events = [{ name: 'exception', time: hrTime(fields.endMs), attributes, droppedAttributesCount: 0 }];
      }
    }
    this.status = status;
    this.events = events;
  }

  spanContext(): SpanContext {
    return this.context;
  }

  get links(): ReadableSpan['links'] {
    return NO_LINKS;
  }

  get ended(): boolean {
    return true;
  }

  get resource(): ReadableSpan['resource'] {
    return this.sink.resource;
  }

  get instrumentationScope(): ReadableSpan['instrumentationScope'] {
    return this.sink.scope;
  }

  get droppedAttributesCount(): number {
    return 0;
  }

  get droppedEventsCount(): number {
    return 0;
  }

  get droppedLinksCount(): number {
    return 0;
  }

  get parentSpanContext(): SpanContext | undefined {
    if (this.parentSpanId === undefined) return undefined;
    const { traceId, traceFlags } = this.context;
    return { traceId, spanId: this.parentSpanId, traceFlags, isRemote: true };
  }

  get startTime(): HrTime {
    return hrTime(this.startMs);
  }

  get endTime(): HrTime {
    return hrTime(this.endMs);
  }

  get duration(): HrTime {
    return hrTime(Math.max(0, this.endMs - this.startMs));
  }
}

/** Milliseconds (epoch or a duration) as OpenTelemetry's `[seconds, nanoseconds]`. */
export function hrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}
