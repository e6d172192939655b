import { describe, expect, expectTypeOf, it } from 'vitest';
import { testContext } from '../testing/index.ts';
import { done, fanOut, steps } from './steps.ts';

const ctx = testContext();

describe('steps', () => {
  it('passes each result to the next step, keeping step names', async () => {
    const parse = (text: string) => Number.parseInt(text, 10);
    const double = (n: number) => n * 2;
    const describeIt = async (n: number) => ({ value: n });
    const pipeline = steps(parse, double, describeIt);
    expect(await pipeline('21', ctx)).toEqual({ value: 42 });
    expect(pipeline.stepNames).toEqual(['parse', 'double', 'describeIt']);
    expectTypeOf(pipeline).returns.resolves.toEqualTypeOf<{ value: number }>();
  });

  it('fans out: the rest runs once per item and the results come back as a list, nested fan-outs flattened', async () => {
    const split = (text: string) => fanOut(text.split(','));
    const letters = (word: string) => fanOut(word.split(''));
    const upper = (letter: string) => letter.toUpperCase();
    const pipeline = steps(split, letters, upper);
    expect(await pipeline('ab,c', ctx)).toEqual(['A', 'B', 'C']);
    expectTypeOf(pipeline).returns.resolves.toEqualTypeOf<string[]>();
  });

  it('ends early with done()', async () => {
    let reached = false;
    const check = (n: number) => (n < 0 ? done('negative' as const) : n);
    const after = (n: number) => {
      reached = true;
      return n + 1;
    };
    const pipeline = steps(check, after);
    expect(await pipeline(-1, ctx)).toBe('negative');
    expect(reached).toBe(false);
    expect(await pipeline(1, ctx)).toBe(2);
    expectTypeOf(pipeline).returns.resolves.toEqualTypeOf<number | 'negative'>();
  });

  it('runs a step alone with a test context that records emits', async () => {
    const local = testContext({ settings: { factor: 3 } });
    const scale = (n: number, c: typeof local) => n * c.settings.factor;
    expect(await scale(2, local)).toBe(6);
  });

  it('refuses an endless fan-out', async () => {
    const explode = () => fanOut(Array.from({ length: 10_001 }, (_, i) => i));
    await expect(steps(explode)(undefined, ctx)).rejects.toThrow(/limit is 10000/);
  });
});
