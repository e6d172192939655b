import type { BackoffPolicy } from './task.ts';

/** The policy of a task that names none: 1 s, 2 s, 4 s … up to an hour, each up to a fifth shorter at random. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  kind: 'exponential',
  delayMs: 1_000,
  maxDelayMs: 3_600_000,
  jitter: 0.2,
};

const DEFAULT_MAX_DELAY_MS = 3_600_000;

/**
 * The wait before the next attempt, in ms, after `failures` failed attempts (1 after the first).
 *
 * @param random A number in [0, 1); `Math.random` by default, fixed in tests.
 * @example
 * backoffDelay({ kind: 'linear', delayMs: 100 }, 3); // 300
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const n = Math.max(1, failures);
  let delay: number;
  switch (policy.kind) {
    case 'fixed':
      delay = policy.delayMs;
      break;
    case 'linear':
      delay = Math.min(policy.delayMs * n, policy.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
      break;
    case 'exponential':
      delay = Math.min(policy.delayMs * (policy.factor ?? 2) ** (n - 1), policy.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
      break;
    default: {
      const unknown: never = policy;
      throw new TypeError(`unknown backoff policy ${JSON.stringify(unknown)}`);
    }
  }
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? 0));
  return Math.max(0, Math.round(delay - delay * jitter * random()));
}
