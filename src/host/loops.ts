import type { Logger } from '../log/logger.ts';
import type { LoopDef } from '../service/service.ts';

/** A loop the host runs from start to stop. */
export interface RunningLoop {
  /** Resolves once the loop returned after the stop signal. */
  finished: Promise<void>;
}

/**
 * Runs a service loop until `signal` aborts, restarting it with doubling delays when it throws (or returns while
 * the host is still running).
 */
export function runLoop(loop: LoopDef, signal: AbortSignal, log: Logger, run: () => Promise<void>): RunningLoop {
  const first = loop.options.restartDelayMs ?? 500;
  const max = loop.options.maxRestartDelayMs ?? 30_000;
  const finished = (async () => {
    let delay = first;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await run();
        if (signal.aborted) return;
        log.warn({ event: loop.name }, 'loop returned while the host runs; restarting');
      } catch (error) {
        if (signal.aborted) return;
        log.error({ event: loop.name, err: error, restartInMs: delay }, 'loop crashed; restarting');
      }
      // A loop that ran a good while before failing starts again from the shortest delay.
      if (Date.now() - started > max) delay = first;
      await sleep(delay, signal);
      delay = Math.min(max, delay * 2);
    }
  })();
  return { finished };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
