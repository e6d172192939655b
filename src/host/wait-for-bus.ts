import { GantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';

/** Errors no wait can cure: a wrong URL, a missing package, bad options. */
const PERMANENT_BUS_ERRORS = new Set([
  'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
  'GANTRY_ERR_DRIVER_MISSING_PACKAGE',
  'GANTRY_ERR_CONFIG_INVALID',
]);

/**
 * The longest one attempt may take. A client library can leave a promise pending for good when the broker drops the
 * connection mid-handshake; bounding each attempt turns that into an unavailable bus, which is retried, instead of a
 * start that never ends (or a process that exits when nothing else keeps its event loop alive).
 */
const ATTEMPT_MS = 30_000;

/** What {@link retryWhileBusDown} retries on. */
export type BusRetryPolicy = 'any-but-permanent' | 'unavailable-only';

/**
 * Runs `step` (opening the bus, subscribing a group...) again with backoff while the broker is down or still
 * recovering, for up to `timeoutMs`, so a process started during a broker restart comes up when the broker does
 * instead of exiting. With `unavailable-only`, only `GANTRY_ERR_BUS_UNAVAILABLE` is retried: the broker answered
 * nothing in time (a subscribe right after a restart, when JetStream has not finished recovering its streams).
 */
export async function retryWhileBusDown<T>(
  what: string,
  step: () => Promise<T>,
  options: {
    timeoutMs: number;
    log: Logger;
    policy: BusRetryPolicy;
    context?: Record<string, unknown>;
    /** The longest one attempt may take; default 30 s. */
    attemptMs?: number;
  },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await bounded(what, step(), options.attemptMs ?? ATTEMPT_MS);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const retryable =
        options.policy === 'unavailable-only'
          ? code === 'GANTRY_ERR_BUS_UNAVAILABLE'
          : !PERMANENT_BUS_ERRORS.has(typeof code === 'string' ? code : '');
      if (!retryable || Date.now() + delay > deadline) throw error;
      options.log.warn({ err: error, retryInMs: delay, ...options.context }, `${what}: the bus is not ready; retrying`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** `work`, or a retryable `GANTRY_ERR_BUS_UNAVAILABLE` when it has not settled within `ms`. */
function bounded<T>(what: string, work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GantryError('GANTRY_ERR_BUS_UNAVAILABLE', `${what} did not finish within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
