import { describe, expect, it } from 'vitest';
import { natsDurableName, natsNames, parseNatsUrl } from './options.ts';

describe('NATS bus URL', () => {
  it('reads defaults, seeds and credentials', () => {
    const options = parseNatsUrl(new URL('nats://app:s%40cret@nats.internal?servers=n2:4222,n3:4222'), 'orders-1');
    expect(options).toMatchObject({
      servers: ['nats.internal:4222', 'n2:4222', 'n3:4222'],
      user: 'app',
      pass: 's@cret',
      connectionName: 'orders-1',
      prefix: 'gantry',
      claimTimeoutMs: 30_000,
      retention: 'limits',
      storage: 'file',
      replicas: 1,
      publishTimeoutMs: 30_000,
    });
    expect(parseNatsUrl(new URL('nats://t0ken@127.0.0.1:4333'), 'x')).toMatchObject({
      servers: ['127.0.0.1:4333'],
      token: 't0ken',
    });
  });

  it('refuses unknown options and values out of range', () => {
    for (const query of [
      'claimTimeout=5',
      'claimTimeoutMs=soon',
      'claimTimeoutMs=10',
      'retention=workqueue',
      'prefix=Big_One',
    ]) {
      expect(() => parseNatsUrl(new URL(`nats://127.0.0.1?${query}`), 'x'), query).toThrow(
        expect.objectContaining({ code: 'GANTRY_ERR_CONFIG_INVALID' }),
      );
    }
    expect(() => parseNatsUrl(new URL('nats://127.0.0.1?maxAgeMs=1000&duplicateWindowMs=2000'), 'x')).toThrow(
      /duplicateWindowMs/,
    );
  });
});

describe('NATS names', () => {
  it('puts each Gantry stream on a subject and a JetStream stream of its own', () => {
    expect(natsNames('gantry', 'orders.placed')).toEqual({
      subject: 'gantry.orders.placed',
      stream: 'GANTRY_orders_placed',
    });
    expect(natsNames('gantry', 'orders.placed.dlq').stream).toBe('GANTRY_orders_placed_dlq');
  });

  it('escapes names one-to-one, into characters JetStream names allow', () => {
    const names = ['a.b', 'a_b', 'a-b', 'a._b', 'a_.b', 'a--b', 'a-_b', 'a.-b', 'a-.b', 'a__b', 'A.b', 'a b'];
    const escaped = names.map((name) => natsNames('p', name).stream);
    expect(new Set(escaped).size).toBe(names.length);
    for (const name of escaped) expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(natsDurableName('billing.v2')).toBe('billing_v2');
  });
});
