import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** One finished span as the store keeps it (plain data, ready for JSON). */
export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** Epoch milliseconds. */
  startMs: number;
  durationMs: number;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
  attributes: Record<string, string | number | boolean>;
}

/** A summary of one recent trace. */
export interface TraceSummary {
  traceId: string;
  /** The name of its earliest span. */
  name: string;
  startMs: number;
  durationMs: number;
  spanCount: number;
  error: boolean;
}

/** Options of {@link SpanStore}. */
export interface SpanStoreOptions {
  /** Traces kept, the oldest dropped first; default 100. */
  maxTraces?: number;
  /** Spans kept per trace; default 500. */
  maxSpansPerTrace?: number;
}

const KINDS: Record<SpanKind, StoredSpan['kind']> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

/**
 * The most recent traces of this process, in memory and bounded: a span processor that keeps each finished span.
 * The dashboard's waterfall and tests read it; exporters are unaffected.
 */
export class SpanStore implements SpanProcessor {
  /** The finished spans as the processor got them: turned into plain data only when read, off the request path. */
  private readonly traces = new Map<string, ReadableSpan[]>();
  /** Trace ids in arrival order, in a ring: the slot a new trace takes names the oldest one, dropped then. */
  private readonly order: (string | undefined)[];
  private next = 0;
  private readonly maxSpansPerTrace: number;

  constructor(options: SpanStoreOptions = {}) {
    this.order = new Array(options.maxTraces ?? 100).fill(undefined);
    this.maxSpansPerTrace = options.maxSpansPerTrace ?? 500;
  }

  /** Recent traces, newest first. */
  recent(limit = 50): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, finished] of [...this.traces].reverse()) {
      if (out.length >= limit) break;
      const spans = finished.map(toStored);
      let first = spans[0] as StoredSpan;
      let end = 0;
      for (const span of spans) {
        if (span.startMs < first.startMs) first = span;
        end = Math.max(end, span.startMs + span.durationMs);
      }
      out.push({
        traceId,
        name: first.name,
        startMs: first.startMs,
        durationMs: round(end - first.startMs),
        spanCount: spans.length,
        error: spans.some((span) => span.status === 'error'),
      });
    }
    return out;
  }

  /**
   * The spans of one trace, earliest first and parents before children; empty when the trace is unknown or was
   * dropped. Starts are known to the millisecond only, so a child often starts "with" its parent: depth breaks ties.
   */
  trace(traceId: string): StoredSpan[] {
    const spans = (this.traces.get(traceId) ?? []).map(toStored);
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const depth = (span: StoredSpan): number => {
      let n = 0;
      for (let at = span.parentSpanId; at !== undefined && n < spans.length; at = byId.get(at)?.parentSpanId) n++;
      return n;
    };
    return spans
      .map((span) => ({ span, depth: depth(span) }))
      .sort((a, b) => a.span.startMs - b.span.startMs || a.depth - b.depth)
      .map(({ span }) => span);
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const { traceId } = span.spanContext();
    let spans = this.traces.get(traceId);
    if (spans === undefined) {
      const oldest = this.order[this.next];
      if (oldest !== undefined) this.traces.delete(oldest);
      this.order[this.next] = traceId;
      this.next = (this.next + 1) % this.order.length;
      spans = [];
      this.traces.set(traceId, spans);
    }
    if (spans.length < this.maxSpansPerTrace) spans.push(span);
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}

/** A finished span as plain data. */
function toStored(span: ReadableSpan): StoredSpan {
  const { traceId, spanId } = span.spanContext();
  const attributes: StoredSpan['attributes'] = {};
  for (const [key, value] of Object.entries(span.attributes)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') attributes[key] = value;
  }
  const stored: StoredSpan = {
    traceId,
    spanId,
    name: span.name,
    kind: KINDS[span.kind],
    startMs: round(span.startTime[0] * 1000 + span.startTime[1] / 1e6),
    durationMs: round(span.duration[0] * 1000 + span.duration[1] / 1e6),
    status:
      span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset',
    attributes,
  };
  const parent = span.parentSpanContext?.spanId;
  if (parent !== undefined) stored.parentSpanId = parent;
  if (span.status.message) stored.statusMessage = span.status.message;
  return stored;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
