import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDurabilityScenario } from '../support/durability.ts';
import { type NatsBroker, startNatsBroker } from './brokers/nats.ts';

describe('durability on NATS JetStream', () => {
  let broker: NatsBroker;
  beforeAll(async () => {
    broker = await startNatsBroker();
  });
  afterAll(async () => broker?.remove());

  it('loses nothing and runs no effect twice: 10,000 messages, consumer SIGKILLed twice, broker restarted once', async () => {
    const report = await runDurabilityScenario({ broker, urlOptions: '?claimTimeoutMs=2000' });
    console.log('durability nats', report);
    expect(report.handled).toBe(report.published);
    expect(report.effects).toBe(report.handled);
    expect(report.consumerPids).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
