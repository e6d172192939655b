import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';
import { CronSchedule } from './schedule.ts';
import { defineTask } from './task.ts';

describe('backoff policies', () => {
  it('waits the same for fixed, n times for linear, and doubling for exponential, up to the cap', () => {
    expect([1, 2, 3].map((n) => backoffDelay({ kind: 'fixed', delayMs: 100 }, n))).toEqual([100, 100, 100]);
    expect([1, 2, 3].map((n) => backoffDelay({ kind: 'linear', delayMs: 100 }, n))).toEqual([100, 200, 300]);
    expect([1, 2, 3, 4].map((n) => backoffDelay({ kind: 'exponential', delayMs: 100, maxDelayMs: 500 }, n))).toEqual([
      100, 200, 400, 500,
    ]);
    expect(backoffDelay({ kind: 'exponential', delayMs: 100, factor: 3 }, 3)).toBe(900);
  });

  it('takes up to the jitter fraction off at random', () => {
    expect(backoffDelay({ kind: 'fixed', delayMs: 1_000, jitter: 0.5 }, 1, () => 0)).toBe(1_000);
    expect(backoffDelay({ kind: 'fixed', delayMs: 1_000, jitter: 0.5 }, 1, () => 0.999)).toBe(501);
    expect(backoffDelay({ kind: 'linear', delayMs: 1_000, jitter: 2 }, 1, () => 0.5)).toBe(500);
  });
});

describe('cron schedules', () => {
  it('computes the next tick in its time zone, UTC by default', () => {
    const after = new Date('2030-06-01T12:00:00Z');
    expect(new CronSchedule('0 3 * * *').next(after)?.toISOString()).toBe('2030-06-02T03:00:00.000Z');
    expect(new CronSchedule('0 3 * * *', 'Europe/Paris').next(after)?.toISOString()).toBe('2030-06-02T01:00:00.000Z');
  });

  it('lists missed ticks by policy: none, the latest, or all (oldest first)', () => {
    const cron = new CronSchedule('0 * * * *');
    const after = new Date('2030-01-01T00:00:00Z');
    const until = new Date('2030-01-01T03:30:00Z');
    expect(cron.missed(after, until, 'skip')).toEqual([]);
    expect(cron.missed(after, until, 'once').map((d) => d.toISOString())).toEqual(['2030-01-01T03:00:00.000Z']);
    expect(cron.missed(after, until, 'all').map((d) => d.toISOString())).toEqual([
      '2030-01-01T01:00:00.000Z',
      '2030-01-01T02:00:00.000Z',
      '2030-01-01T03:00:00.000Z',
    ]);
    expect(cron.missed(new Date('2029-01-01T00:00:00Z'), until, 'all')).toHaveLength(100);
  });

  it('refuses a bad expression at definition', () => {
    expect(() => new CronSchedule('61 * * * *')).toThrow(/not valid/);
  });
});

describe('task definitions', () => {
  it('checks names and numbers when defined', () => {
    expect(() => defineTask('Bad Name', { input: {} as never })).toThrow(/lower-case/);
    expect(() => defineTask('ok.name', { input: {} as never, attempts: 0 })).toThrow(/attempts/);
    expect(defineTask('ok.name', { input: {} as never }).name).toBe('ok.name');
  });
});
