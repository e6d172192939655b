import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { randomHex, randomUuid } from './ids.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('gives version 4 UUIDs in the shape crypto.randomUUID gives, none twice across pool refills', () => {
    // 4 KiB of pool is 256 ids: 3,000 of them cross a dozen refills.
    const ids = Array.from({ length: 3_000 }, () => randomUuid());
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(ids.length);
    expect(randomUUID()).toMatch(UUID_V4);
  });

  it('uses every hex digit in every free position', () => {
    // A wrong table or position would leave some digit out of some place of the string.
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let n = 0; n < 2_000; n++) {
      const id = randomUuid();
      for (let i = 0; i < 36; i++) seen[i]?.add(id[i] as string);
    }
    const sizes = seen.map((digits) => digits.size);
    expect(sizes).toEqual(
      Array.from({ length: 36 }, (_, i) => ([8, 13, 18, 23].includes(i) ? 1 : i === 14 ? 1 : i === 19 ? 4 : 16)),
    );
  });

  it('returns strings that stay the same after the next id is made', () => {
    const first = randomUuid();
    const copy = `${first}`;
    randomUuid();
    expect(first).toBe(copy);
  });
});

describe('randomHex', () => {
  it('gives the asked number of random bytes as lower-case hex', () => {
    expect(randomHex(16)).toMatch(/^[0-9a-f]{32}$/);
    expect(randomHex(8)).toMatch(/^[0-9a-f]{16}$/);
    expect(randomHex(8)).not.toBe(randomHex(8));
  });
});
