import { GantryError, toGantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';
import type { Context, ServiceInfo } from '../service/context.ts';
import type { Tracking } from '../tracking/trace-context.ts';
import type { EventRun, HookRegistry } from './hooks.ts';

/** How one run of an event is carried out. */
export interface RunEventOptions {
  service: ServiceInfo;
  event: string;
  kind: EventRun['kind'];
  tracking: Tracking;
  /** Aborts the run with a 504-mapped timeout error after this many ms. */
  timeoutMs: number;
  /** The host's in-flight runs: each adds its abort function, which the shutdown deadline calls. */
  inFlight: Set<(reason: GantryError) => void>;
  log: Logger;
  hooks: HookRegistry;
  /** Builds the handler context from the run's logger and signal. */
  context: (log: Logger, signal: AbortSignal) => Context;
  /** Extra fields for the START line. */
  fields?: Record<string, unknown>;
}

/** What a run returns: the handler's value and, for HTTP, the status decided from it. */
export interface RunResult<T> {
  value: T;
  durationMs: number;
}

/**
 * Runs one event: a logger bound to its ids, a START line, the handler raced against its timeout and the host's
 * deadline, then a DONE or FAILED line with the duration, and the observer hooks around it.
 */
export async function runEvent<T>(
  options: RunEventOptions,
  handler: (ctx: Context) => Promise<T>,
  statusOf: (value: T) => number | undefined = () => undefined,
): Promise<RunResult<T>> {
  const { tracking } = options;
  const log = options.log.child({
    service: options.service.name,
    version: options.service.version,
    event: options.event,
    requestId: tracking.requestId,
    traceId: tracking.traceId,
    spanId: tracking.spanId,
  });
  const startedAt = performance.now();
  const run: EventRun = {
    service: options.service,
    event: options.event,
    kind: options.kind,
    tracking,
    startedAt: Date.now(),
  };
  if (options.hooks.has('onEventStart')) options.hooks.emit('onEventStart', run);
  log.info(options.fields ?? {}, 'START');
  try {
    const value = await withDeadline(options, log, handler);
    const durationMs = round(performance.now() - startedAt);
    const status = statusOf(value);
    log.info(status === undefined ? { durationMs } : { status, durationMs }, 'DONE');
    run.durationMs = durationMs;
    run.outcome = 'succeeded';
    if (status !== undefined) run.status = status;
    if (options.hooks.has('onEventEnd')) options.hooks.emit('onEventEnd', run);
    return { value, durationMs };
  } catch (thrown) {
    const error = toGantryError(thrown);
    const durationMs = round(performance.now() - startedAt);
    if (error.status >= 500) log.error({ status: error.status, durationMs, err: thrown }, 'FAILED');
    else log.info({ status: error.status, durationMs, code: error.code, reason: error.message }, 'FAILED');
    run.durationMs = durationMs;
    run.outcome = 'failed';
    run.status = error.status;
    run.error = thrown;
    if (options.hooks.has('onEventEnd')) options.hooks.emit('onEventEnd', run);
    throw thrown;
  }
}

/**
 * Runs the handler with a signal that aborts at its timeout or at the host's shutdown deadline, and rejects at that
 * moment even if the handler ignores the signal. One controller and one timer per run: `AbortSignal.any` and
 * `AbortSignal.timeout` cost several times more on this hot path.
 */
function withDeadline<T>(options: RunEventOptions, log: Logger, handler: (ctx: Context) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = new Deadline(options, reject);
    let work: Promise<T>;
    try {
      work = handler(options.context(log, deadline.controller.signal));
    } catch (error) {
      work = Promise.reject(error);
    }
    // Callbacks passed inline rather than bound to names: under tsx every named closure made per run also costs a
    // `name` property definition.
    work.then(
      (value) => {
        deadline.settle();
        resolve(value);
      },
      (error: unknown) => {
        deadline.settle();
        reject(error);
      },
    );
  });
}

/** The timer and the host's in-flight entry of one run; aborting rejects the run's promise. */
class Deadline {
  readonly controller = new AbortController();
  /** What the host's shutdown deadline calls; the entry of this run in `inFlight`. */
  readonly abort: (reason: GantryError) => void;
  private readonly timer: NodeJS.Timeout;

  readonly options: RunEventOptions;

  constructor(options: RunEventOptions, reject: (reason: GantryError) => void) {
    this.options = options;
    this.abort = (reason) => {
      this.settle();
      this.controller.abort(reason);
      reject(reason);
    };
    this.timer = setTimeout(expire, options.timeoutMs, this);
    options.inFlight.add(this.abort);
  }

  /** Ends the run's claim on the timer and the in-flight set. */
  settle(): void {
    clearTimeout(this.timer);
    this.options.inFlight.delete(this.abort);
  }
}

function expire(deadline: Deadline): void {
  const { event, timeoutMs } = deadline.options;
  deadline.abort(new GantryError('GANTRY_ERR_EVENT_TIMEOUT', `${event} did not finish within ${timeoutMs} ms`));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
