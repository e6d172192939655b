import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDurabilityScenario } from '../support/durability.ts';
import { type RedisBroker, startRedisBroker } from './brokers/redis.ts';

describe('durability on Redis Streams', () => {
  let broker: RedisBroker;
  beforeAll(async () => {
    broker = await startRedisBroker();
  });
  afterAll(async () => broker?.remove());

  it('loses nothing and runs no effect twice: 10,000 messages, consumer SIGKILLed twice, broker restarted once', async () => {
    const report = await runDurabilityScenario({ broker, urlOptions: '?claimTimeoutMs=2000' });
    console.log('durability redis', report);
    expect(report.handled).toBe(report.published);
    expect(report.effects).toBe(report.handled);
    expect(report.consumerPids).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
