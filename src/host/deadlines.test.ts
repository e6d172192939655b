import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors/gantry-error.ts';
import { RunDeadlines, TimedRun } from './deadlines.ts';

class Probe extends TimedRun {
  outcome: string | undefined;
  readonly name: string;
  readonly log: string[];

  constructor(name: string, log: string[]) {
    super();
    this.name = name;
    this.log = log;
  }

  timedOut(): void {
    this.outcome = 'timed out';
    this.log.push(`${this.name} timed out`);
  }

  aborted(reason: GantryError): void {
    this.outcome = `aborted: ${reason.message}`;
    this.log.push(`${this.name} aborted`);
  }
}

describe('RunDeadlines', () => {
  it('times out each run at its own timeout and never before it, oldest first, across lanes', async () => {
    const deadlines = new RunDeadlines();
    const log: string[] = [];
    const firedAt = new Map<string, number>();
    const probe = (name: string) =>
      new (class extends Probe {
        override timedOut(): void {
          firedAt.set(name, performance.now());
          super.timedOut();
        }
      })(name, log);
    const a = probe('a');
    const b = probe('b');
    const c = probe('c');
    const started = new Map<string, number>();
    const add = (run: Probe, timeoutMs: number) => {
      const now = performance.now();
      started.set(run.name, now);
      deadlines.add(run, timeoutMs, now);
    };
    add(a, 120);
    add(c, 40);
    await sleep(20);
    add(b, 120);
    expect(deadlines.size).toBe(3);
    while (deadlines.size > 0) await sleep(10);
    expect(log).toEqual(['c timed out', 'a timed out', 'b timed out']);
    for (const [name, timeoutMs] of [
      ['a', 120],
      ['b', 120],
      ['c', 40],
    ] as const) {
      // Node may fire a timer up to a millisecond early on this clock; RunDeadlines allows for it.
      expect((firedAt.get(name) as number) - (started.get(name) as number)).toBeGreaterThanOrEqual(timeoutMs - 1);
    }
  });

  it('never times out a run that was removed, even the oldest of a lane', async () => {
    const deadlines = new RunDeadlines();
    const log: string[] = [];
    const runs = ['a', 'b', 'c', 'd'].map((name) => new Probe(name, log));
    for (const run of runs) deadlines.add(run, 30, performance.now());
    deadlines.remove(runs[0] as Probe);
    deadlines.remove(runs[2] as Probe);
    deadlines.remove(runs[2] as Probe);
    expect(deadlines.size).toBe(2);
    while (deadlines.size > 0) await sleep(10);
    expect(log).toEqual(['b timed out', 'd timed out']);
  });

  it('aborts every run in flight with the reason, once', async () => {
    const deadlines = new RunDeadlines();
    const log: string[] = [];
    const a = new Probe('a', log);
    const b = new Probe('b', log);
    deadlines.add(a, 50, performance.now());
    deadlines.add(b, 5_000, performance.now());
    deadlines.abortAll(new GantryError('GANTRY_ERR_EVENT_ABORTED', 'shutdown'));
    expect(a.outcome).toBe('aborted: shutdown');
    expect(b.outcome).toBe('aborted: shutdown');
    expect(deadlines.size).toBe(0);
    await sleep(80);
    expect(log).toEqual(['a aborted', 'b aborted']);
  });

  it('keeps serving a lane after it emptied and its timer fired', async () => {
    const deadlines = new RunDeadlines();
    const log: string[] = [];
    const first = new Probe('first', log);
    deadlines.add(first, 20, performance.now());
    deadlines.remove(first);
    await sleep(40);
    const second = new Probe('second', log);
    deadlines.add(second, 20, performance.now());
    while (deadlines.size > 0) await sleep(10);
    expect(log).toEqual(['second timed out']);
  });
});
