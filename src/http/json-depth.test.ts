import { describe, expect, it } from 'vitest';
import { jsonDepth } from './json-depth.ts';

describe('jsonDepth', () => {
  it('counts the nesting of objects and arrays', () => {
    expect(jsonDepth('1', 10)).toBe(0);
    expect(jsonDepth('{}', 10)).toBe(1);
    expect(jsonDepth('{"a":[1,{"b":[]}],"c":{}}', 10)).toBe(4);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonDepth('{"a":"[[[{{{"}', 10)).toBe(1);
    expect(jsonDepth('["\\"[[[", ["x"]]', 10)).toBe(2);
  });

  it('ends a string at a quote after an even run of backslashes', () => {
    // "a\\" is a string ending in one backslash: the brackets after it count.
    expect(jsonDepth('["a\\\\", [[1]]]', 10)).toBe(3);
    expect(jsonDepth('["a\\\\\\"[[", 1]', 10)).toBe(1);
  });

  it('counts nothing after an unterminated string', () => {
    expect(jsonDepth('[["abc[[[[', 10)).toBe(2);
  });

  it('stops as soon as the limit is passed', () => {
    expect(jsonDepth(`${'['.repeat(1_000_000)}`, 32)).toBe(33);
  });
});
