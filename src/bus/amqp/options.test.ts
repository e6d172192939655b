import { describe, expect, it } from 'vitest';
import { GantryError } from '../../errors/gantry-error.ts';
import { amqpTopologyNames, parseAmqpBusUrl, retryTierFor } from './options.ts';

const parse = (url: string) => parseAmqpBusUrl(new URL(url), 'orders-1');

describe('parseAmqpBusUrl', () => {
  it('applies the defaults and hands amqplib the URL without the adapter options', () => {
    const options = parse('amqp://guest:guest@127.0.0.1:5672/?heartbeat=10');
    expect(options).toMatchObject({
      exchange: 'gantry',
      claimTimeoutMs: 30_000,
      publishTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      reconnectMaxDelayMs: 5_000,
      connectionName: 'orders-1',
    });
    expect(options.connectUrl).toBe('amqp://guest:guest@127.0.0.1:5672/?heartbeat=10');
  });

  it('reads the adapter options, strips them, and hides the password in the display URL', () => {
    const options = parse('amqps://app:s3cret@mq.example:5671/shop?exchange=orders&claimTimeoutMs=1500&frameMax=8192');
    expect(options).toMatchObject({ exchange: 'orders', claimTimeoutMs: 1_500 });
    expect(options.connectUrl).toBe('amqps://app:s3cret@mq.example:5671/shop?frameMax=8192');
    expect(options.displayUrl).not.toContain('s3cret');
    expect(options.displayUrl).toContain('mq.example:5671/shop');
  });

  it.each([
    ['amqp://h/?claimTimeout=5', "'claimTimeout' is unknown"],
    ['amqp://h/?claimTimeoutMs=soon', 'claimTimeoutMs must be a number'],
    ['amqp://h/?publishTimeoutMs=0', 'publishTimeoutMs must be a number ≥ 1'],
    ['amqp://h/?exchange=amq.topic', "not starting with 'amq.'"],
    ['amqp://h/?exchange=', 'non-empty'],
    ['redis://h/', 'must start with amqp://'],
  ])('refuses %s', (url, message) => {
    const refused = (() => {
      try {
        return parse(url);
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(GantryError);
    expect(refused).toMatchObject({ code: 'GANTRY_ERR_CONFIG_INVALID', message: expect.stringContaining(message) });
  });
});

describe('retryTierFor', () => {
  it('picks the smallest power-of-two tier at least as long as the delay, between 64 ms and the longest tier', () => {
    expect(retryTierFor(0)).toBe(64);
    expect(retryTierFor(1)).toBe(64);
    expect(retryTierFor(64)).toBe(64);
    expect(retryTierFor(65)).toBe(128);
    expect(retryTierFor(400)).toBe(512);
    expect(retryTierFor(30_000)).toBe(32_768);
    expect(retryTierFor(24 * 3_600_000)).toBe(2 ** 22);
  });

  it('names one retry queue per tier', () => {
    const names = amqpTopologyNames('shop');
    const queue = names.groupQueue('orders.placed', 'billing');
    expect(queue).toBe('shop:orders.placed:billing');
    expect(names.retryQueue(queue, retryTierFor(400))).toBe('shop:orders.placed:billing:retry-512');
    expect(names.retryTiers).toContain(retryTierFor(123_456));
    expect(names.retryTiers).toHaveLength(17);
  });
});
