import { describe, expect, it } from 'vitest';
import { GantryError } from '../../errors/gantry-error.ts';
import { parseRedisStreamsUrl } from './options.ts';

describe('parseRedisStreamsUrl', () => {
  it('reads the defaults from a bare URL', () => {
    expect(parseRedisStreamsUrl(new URL('redis://127.0.0.1:6379'))).toEqual({
      target: { host: '127.0.0.1', port: 6379, db: 0, tls: false },
      options: {
        maxLen: 1_000_000,
        claimTimeoutMs: 30_000,
        prefix: 'gantry:',
        blockMs: 2_000,
        commandTimeoutMs: 10_000,
      },
    });
  });

  it('reads credentials, database, TLS and every option', () => {
    const parsed = parseRedisStreamsUrl(
      new URL(
        'rediss://app:p%40ss@cache.internal:6380/3?maxLen=0&claimTimeoutMs=5000&prefix=shop:&blockMs=500&commandTimeoutMs=2000',
      ),
    );
    expect(parsed.target).toEqual({
      host: 'cache.internal',
      port: 6380,
      db: 3,
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(parsed.options).toEqual({
      maxLen: 0,
      claimTimeoutMs: 5_000,
      prefix: 'shop:',
      blockMs: 500,
      commandTimeoutMs: 2_000,
    });
  });

  it('takes the bare address of an IPv6 literal', () => {
    expect(parseRedisStreamsUrl(new URL('redis://[::1]:7000')).target).toMatchObject({ host: '::1', port: 7000 });
  });

  it.each([
    ['an unknown option', 'redis://h?claimTimeout=5', "unknown option 'claimTimeout'"],
    ['a value that is not a number', 'redis://h?maxLen=lots', "'maxLen' must be an integer"],
    ['a value below the minimum', 'redis://h?claimTimeoutMs=10', "'claimTimeoutMs' must be an integer of at least 100"],
    ['an empty value', 'redis://h?blockMs=', "'blockMs' must be an integer"],
    ['a path that is not a database number', 'redis://h/cache', 'database number'],
  ])('refuses %s with GANTRY_ERR_CONFIG_INVALID', (_label, url, message) => {
    let thrown: unknown;
    try {
      parseRedisStreamsUrl(new URL(url));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GantryError);
    expect(thrown).toMatchObject({ code: 'GANTRY_ERR_CONFIG_INVALID', message: expect.stringContaining(message) });
  });

  it('never quotes the password in an error', () => {
    expect(() => parseRedisStreamsUrl(new URL('redis://:hunter2@h?nope=1'))).toThrow(/^(?!.*hunter2)/);
  });
});
