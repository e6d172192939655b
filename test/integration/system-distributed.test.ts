import { describe, expect, it } from 'vitest';
import { runDistributedSystem } from '../support/system-scenario.ts';
import { startNatsBroker } from './brokers/nats.ts';
import { startRabbitMqBroker } from './brokers/rabbitmq.ts';
import { startRedisBroker } from './brokers/redis.ts';

/**
 * Mails a SIGKILLed notifier may have handed to the SMTP server without committing that it did: the sends it had in
 * flight (its consumer's concurrency). SMTP has no transaction to join and no idempotency key, so a mail accepted by the
 * server just before the kill is sent again on redelivery; no sender can close that window. Everything else is once.
 */
const NOTIFIER_SENDS_IN_FLIGHT = 8;

const brokers = [
  { name: 'Redis Streams', start: startRedisBroker },
  { name: 'NATS JetStream', start: startNatsBroker },
  { name: 'RabbitMQ', start: startRabbitMqBroker },
];

describe.each(brokers)('the example system as separate processes on $name', ({ name, start }) => {
  it('converges: replica equals source and every notification is mailed, repeats only of sends in flight at a kill, through kills and a broker restart', async () => {
    const broker = await start();
    try {
      const report = await runDistributedSystem({ broker, busOptions: '?claimTimeoutMs=3000' });
      console.log(`system on ${name}`, report);
      expect(report.workload.errors).toEqual([]);
      expect(report.workload.created).toBe(1_000);
      expect(report.sourceRows).toBe(1_000);
      expect(report.replicaDifferences).toBe(0);
      expect(report.expectedNotifications).toBe(
        report.workload.created + report.workload.emailChanges + report.workload.deleted,
      );
      expect(report.missingMails).toBe(0);
      expect(report.duplicateMails).toBeLessThanOrEqual(NOTIFIER_SENDS_IN_FLIGHT);
    } finally {
      await broker.remove();
    }
  }, 600_000);
});
