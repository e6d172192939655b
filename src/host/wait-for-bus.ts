import type { Logger } from '../log/logger.ts';

/** Errors no wait can cure: a wrong URL, a missing package, bad options. */
const PERMANENT_BUS_ERRORS = new Set([
  'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
  'GANTRY_ERR_DRIVER_MISSING_PACKAGE',
  'GANTRY_ERR_CONFIG_INVALID',
]);

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
  options: { timeoutMs: number; log: Logger; policy: BusRetryPolicy; context?: Record<string, unknown> },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await step();
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
