import { describe, expect, it } from 'vitest';
import { RedisCommandDeadlines } from './deadlines.ts';

const never = new Promise<string>(() => undefined);

describe('redis command deadlines', () => {
  it('passes replies and errors through', async () => {
    const deadlines = new RedisCommandDeadlines(60_000);
    await expect(deadlines.bound(Promise.resolve('OK'))).resolves.toBe('OK');
    await expect(deadlines.bound(Promise.reject(new Error('WRONGTYPE')))).rejects.toThrow('WRONGTYPE');
  });

  it('fails only the commands of a turn that are still waiting when the deadline passes', async () => {
    const deadlines = new RedisCommandDeadlines(50);
    const answered = deadlines.bound(Promise.resolve(1));
    const waiting = deadlines.bound(never);
    await expect(answered).resolves.toBe(1);
    await expect(waiting).rejects.toThrow('Command timed out');
  });

  it('gives a command of a later turn its own deadline', async () => {
    const deadlines = new RedisCommandDeadlines(50);
    const first = deadlines.bound(never);
    await new Promise((resolve) => setImmediate(resolve));
    let settled = false;
    const later = deadlines.bound(new Promise((resolve) => setTimeout(() => resolve('late'), 10)));
    later.then(
      () => {
        settled = true;
      },
      () => undefined,
    );
    await expect(first).rejects.toThrow('Command timed out');
    await expect(later).resolves.toBe('late');
    expect(settled).toBe(true);
  });

  it('opens a new deadline after every command of the current turn settled', async () => {
    const deadlines = new RedisCommandDeadlines(50);
    await deadlines.bound(Promise.resolve('a'));
    // Same turn as far as setImmediate goes, but the first batch's timer is cleared: this one needs its own.
    await expect(deadlines.bound(never)).rejects.toThrow('Command timed out');
  });
});
