import { GantryError, toGantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';
import type { Context, ServiceInfo } from '../service/context.ts';
import type { Tracking } from '../tracking/trace-context.ts';
import { runAsEvent } from '../tracking/work-spans.ts';
import { type RunDeadlines, TimedRun } from './deadlines.ts';
import type { EventRun, HookRegistry } from './hooks.ts';

/** How one run of an event is carried out. */
export interface RunEventOptions {
  service: ServiceInfo;
  event: string;
  kind: EventRun['kind'];
  tracking: Tracking;
  /** Aborts the run with a 504-mapped timeout error after this many ms. */
  timeoutMs: number;
  /** The host's runs in flight: each run is tracked there until it ends, and the shutdown deadline aborts them. */
  inFlight: RunDeadlines;
  /** The host's logger; the run logs through a child bound to the service, the event and the tracking ids. */
  log: Logger;
  /** The verified caller's subject, bound to the run's log lines (never its claims: they may hold personal data). */
  subject?: string | undefined;
  hooks: HookRegistry;
  /** Builds the handler context from the run's logger and signal. */
  context: (log: Logger, signal: AbortSignal) => Context;
  /** Extra fields for the START line. */
  fields?: Record<string, unknown>;
  /** For a task's run: the task and how long its job waited once due (see {@link EventRun.job}). */
  job?: EventRun['job'];
}

/**
 * Runs one event: a logger bound to its ids, a START line, the handler raced against its timeout and the host's
 * shutdown deadline, then a DONE or FAILED line with the duration, and the observer hooks around it. Resolves with the
 * handler's value; `statusOf` names the status the DONE line reports for it (HTTP events).
 *
 * The run settles its own promise from the handler's (no `async` layers in between): a request passes through here
 * on the hot path, and each awaited layer costs a promise and a turn of the microtask queue.
 */
export function runEvent<T>(
  options: RunEventOptions,
  handler: (ctx: Context) => Promise<T>,
  statusOf?: (value: T) => number | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    new ActiveRun<T>(options, statusOf, resolve, reject).start(handler);
  });
}

/** Loggers bound to a service and event, made once per host logger, service and event rather than per run. */
const eventLoggers = new WeakMap<Logger, WeakMap<ServiceInfo, Map<string, Logger>>>();

function eventLogger(log: Logger, service: ServiceInfo, event: string): Logger {
  let byService = eventLoggers.get(log);
  if (byService === undefined) {
    byService = new WeakMap();
    eventLoggers.set(log, byService);
  }
  let byEvent = byService.get(service);
  if (byEvent === undefined) {
    byEvent = new Map();
    byService.set(service, byEvent);
  }
  let bound = byEvent.get(event);
  if (bound === undefined) {
    bound = log.child({ service: service.name, version: service.version, event });
    byEvent.set(event, bound);
  }
  return bound;
}

/**
 * One run in flight: its logger, its signal, and its place in the host's {@link RunDeadlines}, which times it out or
 * aborts it at shutdown. It settles once: with the handler's outcome, or with the timeout or abort error at that
 * moment even if the handler ignores the signal. One controller per run and no timer of its own:
 * `AbortSignal.any`, `AbortSignal.timeout` and a timer per run cost several times more on this hot path.
 */
class ActiveRun<T> extends TimedRun {
  readonly controller = new AbortController();
  readonly log: Logger;
  readonly record: EventRun;
  readonly startedAt = performance.now();
  private settled = false;
  private readonly options: RunEventOptions;
  private readonly statusOf: ((value: T) => number | undefined) | undefined;
  private readonly resolve: (value: T) => void;
  private readonly reject: (reason: unknown) => void;

  constructor(
    options: RunEventOptions,
    statusOf: ((value: T) => number | undefined) | undefined,
    resolve: (value: T) => void,
    reject: (reason: unknown) => void,
  ) {
    super();
    this.options = options;
    this.statusOf = statusOf;
    this.resolve = resolve;
    this.reject = reject;
    const { tracking } = options;
    const bindings: Record<string, string> = {
      requestId: tracking.requestId,
      traceId: tracking.traceId,
      spanId: tracking.spanId,
    };
    if (options.subject !== undefined) bindings.subject = options.subject;
    this.log = eventLogger(options.log, options.service, options.event).child(bindings);
    this.record = {
      service: options.service,
      event: options.event,
      kind: options.kind,
      tracking,
      startedAt: Date.now(),
    };
    if (options.job !== undefined) this.record.job = options.job;
  }

  start(handler: (ctx: Context) => Promise<T>): void {
    const { options } = this;
    if (options.hooks.has('onEventStart')) options.hooks.emit('onEventStart', this.record);
    this.log.info(options.fields ?? {}, 'START');
    options.inFlight.add(this, options.timeoutMs, this.startedAt);
    let work: Promise<T>;
    try {
      const ctx = options.context(this.log, this.controller.signal);
      work = runAsEvent(options.tracking, () => handler(ctx));
    } catch (error) {
      work = Promise.reject(error);
    }
    work.then(
      (value) => this.succeed(value),
      (error: unknown) => this.fail(error),
    );
  }

  timedOut(): void {
    const { event, timeoutMs } = this.options;
    this.aborted(new GantryError('GANTRY_ERR_EVENT_TIMEOUT', `${event} did not finish within ${timeoutMs} ms`));
  }

  aborted(reason: GantryError): void {
    this.controller.abort(reason);
    this.fail(reason);
  }

  private succeed(value: T): void {
    // A value that comes once the run's time is up is too late, even when the timer has not fired yet (a timer may
    // run late on a busy process): the caller was promised no answer past its deadline.
    if (!this.settled && this.expiresAt > 0 && performance.now() >= this.expiresAt) {
      this.timedOut();
      return;
    }
    const durationMs = this.settle();
    if (durationMs === undefined) return;
    try {
      const status = this.statusOf?.(value);
      this.log.info(status === undefined ? { durationMs } : { status, durationMs }, 'DONE');
      this.ended(durationMs, 'succeeded', status);
    } catch (error) {
      // Settled by now either way: a run must never hang on its own bookkeeping.
      this.reject(error);
      return;
    }
    this.resolve(value);
  }

  private fail(thrown: unknown): void {
    const durationMs = this.settle();
    if (durationMs === undefined) return;
    try {
      const error = toGantryError(thrown);
      if (error.status >= 500) this.log.error({ status: error.status, durationMs, err: thrown }, 'FAILED');
      else this.log.info({ status: error.status, durationMs, code: error.code, reason: error.message }, 'FAILED');
      this.record.error = thrown;
      this.ended(durationMs, 'failed', error.status);
    } finally {
      this.reject(thrown);
    }
  }

  /** Ends the run's claim on its deadline, once: its duration, or undefined when it had already settled. */
  private settle(): number | undefined {
    if (this.settled) return undefined;
    this.settled = true;
    this.options.inFlight.remove(this);
    return round(performance.now() - this.startedAt);
  }

  /** Completes the run's record and tells the `onEventEnd` observers. */
  private ended(durationMs: number, outcome: 'succeeded' | 'failed', status: number | undefined): void {
    const { record } = this;
    record.durationMs = durationMs;
    record.outcome = outcome;
    if (status !== undefined) record.status = status;
    if (this.options.hooks.has('onEventEnd')) this.options.hooks.emit('onEventEnd', record);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
