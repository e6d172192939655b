import { execFileSync, spawn } from 'node:child_process';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TurnBatchedDestination } from './turn-batched-destination.ts';

function recorder(): { writes: string[]; write(text: string): void } {
  const writes: string[] = [];
  return { writes, write: (text) => writes.push(text) };
}

describe('turn-batched log destination', () => {
  it('writes the lines of one turn in one call, in order, after the turn', async () => {
    const out = recorder();
    const logger = pino({ base: null, timestamp: false }, new TurnBatchedDestination(out));
    logger.info('one');
    logger.info('two');
    logger.warn('three');
    expect(out.writes).toEqual([]);
    await nextTurn();
    expect(out.writes).toHaveLength(1);
    expect(
      (out.writes[0] as string)
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).msg),
    ).toEqual(['one', 'two', 'three']);
    logger.info('four');
    await nextTurn();
    expect(out.writes).toHaveLength(2);
    expect(JSON.parse(out.writes[1] as string).msg).toBe('four');
  });

  it('writes at once when a burst passes its bound, and on flush', async () => {
    const out = recorder();
    const destination = new TurnBatchedDestination(out, 100);
    destination.write(`${'a'.repeat(60)}\n`);
    expect(out.writes).toHaveLength(0);
    destination.write(`${'b'.repeat(60)}\n`);
    expect(out.writes).toEqual([`${'a'.repeat(60)}\n${'b'.repeat(60)}\n`]);
    destination.write('c\n');
    const flushed = await new Promise<Error | undefined>((resolve) => destination.flush(resolve));
    expect(flushed).toBeUndefined();
    expect(out.writes[1]).toBe('c\n');
    await nextTurn();
    expect(out.writes).toHaveLength(2);
  });

  it('writes the lines of a process that exits in the same turn', () => {
    const module = new URL('./logger.ts', import.meta.url).pathname;
    const script = `import { createLogger } from ${JSON.stringify(module)};
      const logger = createLogger({ env: 'test', level: 'info' });
      logger.info('before exit');
      process.exit(3);`;
    let stdout = '';
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    } catch (error) {
      const failed = error as { status: number; stdout: string };
      expect(failed.status).toBe(3);
      stdout = failed.stdout;
    }
    expect(JSON.parse(stdout.trim())).toMatchObject({ msg: 'before exit', env: 'test' });
  });

  it('stops logging, and goes on running, when the reader of its pipe goes away', async () => {
    const module = new URL('./logger.ts', import.meta.url).pathname;
    const script = `import { createLogger } from ${JSON.stringify(module)};
      const logger = createLogger({ env: 'test', level: 'info' });
      let n = 0;
      const timer = setInterval(() => { for (let i = 0; i < 50; i++) logger.info({ n: n++ }, 'line'); }, 5);
      setTimeout(() => { clearInterval(timer); process.stderr.write('still running'); process.exit(0); }, 600);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // Read the first lines, then close the reading end, as `| head -1` would.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('still running');
    expect(code).toBe(0);
  });
});
