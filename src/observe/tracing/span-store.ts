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
  /** Traces always kept (the newest); up to twice as many are, and the oldest go first. Default 100. */
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
 *
 * Traces are kept in two generations of `maxTraces` each: a new trace goes into the current one, and when it is full
 * it becomes the previous one and the one before is dropped whole. So the newest `maxTraces` traces are always kept,
 * and at most twice as many: one map per generation, filled and dropped whole, rather than one map from which the
 * oldest trace is deleted as each new one comes.
 */
export class SpanStore implements SpanProcessor {
  /** The finished spans as the processor got them: turned into plain data only when read, off the request path. */
  private current = new Map<string, KeptTrace>();
  private previous = new Map<string, KeptTrace>();
  private readonly maxTraces: number;
  private readonly maxSpansPerTrace: number;

  constructor(options: SpanStoreOptions = {}) {
    this.maxTraces = Math.max(1, options.maxTraces ?? 100);
    this.maxSpansPerTrace = options.maxSpansPerTrace ?? 500;
  }

  /** Recent traces, newest first. */
  recent(limit = 50): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, kept] of [...this.previous, ...this.current].reverse()) {
      if (out.length >= limit) break;
      const spans = kept.spans().map(toStored);
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
    const spans = (this.find(traceId)?.spans() ?? []).map(toStored);
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
    const kept = this.find(traceId);
    if (kept !== undefined) {
      if (kept.count < this.maxSpansPerTrace) kept.add(span);
      return;
    }
    if (this.current.size >= this.maxTraces) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(traceId, new KeptTrace(span));
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}

  private find(traceId: string): KeptTrace | undefined {
    return this.current.get(traceId) ?? this.previous.get(traceId);
  }
}

/**
 * The spans of one kept trace, in the order they ended: a chain of nodes rather than an array, because the store
 * holds them for a while and an array literal may come to be allocated in the old generation (see `SpanAttributes`).
 */
class KeptTrace {
  count = 1;
  private readonly first: SpanNode;
  private last: SpanNode;

  constructor(span: ReadableSpan) {
    this.first = new SpanNode(span);
    this.last = this.first;
  }

  add(span: ReadableSpan): void {
    const node = new SpanNode(span);
    this.last.next = node;
    this.last = node;
    this.count++;
  }

  spans(): ReadableSpan[] {
    const out: ReadableSpan[] = [];
    for (let node: SpanNode | undefined = this.first; node !== undefined; node = node.next) out.push(node.span);
    return out;
  }
}

class SpanNode {
  readonly span: ReadableSpan;
  next: SpanNode | undefined;

  constructor(span: ReadableSpan) {
    this.span = span;
  }
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
