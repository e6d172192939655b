import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors/gantry-error.ts';
import { createLogger } from '../log/logger.ts';
import { retryWhileBusDown } from './wait-for-bus.ts';

function quietLog() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger({ env: 'test', level: 'warn', destination, pretty: false }), lines };
}

describe('retryWhileBusDown', () => {
  it('retries an unavailable broker until the step succeeds, logging each wait', async () => {
    const { log, lines } = quietLog();
    let calls = 0;
    const result = await retryWhileBusDown(
      'subscribing',
      async () => {
        calls++;
        if (calls < 3) throw new GantryError('GANTRY_ERR_BUS_UNAVAILABLE', 'timeout');
        return 'subscribed';
      },
      { timeoutMs: 10_000, log, policy: 'unavailable-only' },
    );
    expect(result).toBe('subscribed');
    expect(calls).toBe(3);
    expect(lines.filter((line) => line.includes('subscribing: the bus is not ready'))).toHaveLength(2);
  });

  it('gives up at once on an error no wait can cure', async () => {
    const { log } = quietLog();
    let calls = 0;
    const failing = retryWhileBusDown(
      'subscribing',
      async () => {
        calls++;
        throw new GantryError('GANTRY_ERR_INTERNAL', 'refused');
      },
      { timeoutMs: 10_000, log, policy: 'unavailable-only' },
    );
    await expect(failing).rejects.toThrow('refused');
    expect(calls).toBe(1);
  });

  it('rethrows the last error once the time is up', async () => {
    const { log } = quietLog();
    const failing = retryWhileBusDown(
      'opening the bus',
      async () => {
        throw new GantryError('GANTRY_ERR_BUS_UNAVAILABLE', 'still down');
      },
      { timeoutMs: 600, log, policy: 'any-but-permanent' },
    );
    await expect(failing).rejects.toThrow('still down');
  });
});

describe('retryWhileBusDown with a step that never settles', () => {
  it('abandons the attempt after attemptMs and tries again', async () => {
    const { log, lines } = quietLog();
    let calls = 0;
    const result = await retryWhileBusDown(
      'opening the bus',
      () => {
        calls++;
        // The first attempt hangs for good, as a client can when the broker drops it mid-handshake.
        return calls === 1 ? new Promise<string>(() => undefined) : Promise.resolve('open');
      },
      { timeoutMs: 10_000, log, policy: 'unavailable-only', attemptMs: 200 },
    );
    expect(result).toBe('open');
    expect(calls).toBe(2);
    expect(lines.some((line) => line.includes('did not finish within 200 ms'))).toBe(true);
  });
});
