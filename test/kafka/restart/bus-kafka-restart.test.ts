import { afterAll, expect, it } from 'vitest';
import { createEnvelope } from '../../../src/bus/envelope.ts';
import { consumerGroupId, createKafkaBus, type KafkaBus, retryTopic } from '../../../src/bus/kafka/index.ts';
import { waitFor } from '../../../src/testing/index.ts';
import { kafkaUrl, rawAdmin, uniqueName, withOptions } from '../kafka-env.ts';

/**
 * The broker-restart check, run by hand because it restarts nothing itself (see docs/bus/kafka.md):
 *
 *   KAFKA_URL=kafka://127.0.0.1:9092 npm run test:kafka:restart
 *
 * It publishes 2,000 messages while a consumer runs: the first 1,000 at once; then it prints "restart the broker
 * now", publishes 500 more one every 20 ms, and the last 500 from the moment it sees the broker go away. Restart the broker then
 * (`docker restart <container>`, `systemctl restart kafka`, …) keeping its data. Every message must be handled at
 * least once, duplicates allowed, with the adapter reconnecting by itself: a publish that fails while the broker is
 * away rejects with a retryable error and this test publishes it again; the subscription replaces its consumer
 * when the client gives up. KAFKA_RESTART_WAIT_MS bounds the wait for the restart (default 5 minutes).
 */
const TOTAL = 2_000;
const WAIT_FOR_RESTART_MS = Number(process.env.KAFKA_RESTART_WAIT_MS ?? 300_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let bus: KafkaBus | undefined;
const stream = uniqueName('restart');

afterAll(async () => {
  await bus?.close();
  const admin = rawAdmin();
  await admin.deleteTopics({ topics: [stream, retryTopic(stream, 'g')] }).catch(() => undefined);
  await admin.deleteGroups({ groups: [consumerGroupId(stream, 'g')] }).catch(() => undefined);
  await admin.close();
});

it('handles every message published across a broker restart, reconnecting by itself', async () => {
  bus = await createKafkaBus(withOptions(kafkaUrl(), 'claimTimeoutMs=10000'), { instanceId: 'gantry-kafka-restart' });
  const opened = bus;
  const handled = new Set<number>();
  let deliveries = 0;
  const subscription = await opened.subscribe(
    stream,
    'g',
    async (delivery) => {
      deliveries++;
      const n = (delivery.envelope?.data as { n: number } | undefined)?.n;
      if (n !== undefined) handled.add(n);
      await delivery.ack();
    },
    { concurrency: 50, consumerName: 'restart-consumer' },
  );

  let publishRetries = 0;
  const publish = async (n: number): Promise<void> => {
    for (;;) {
      try {
        await opened.publish(stream, createEnvelope({ stream, data: { n }, source: 'restart@1.0.0' }));
        return;
      } catch (error) {
        // The documented behaviour: a publish during the outage rejects with a retryable error; publish again.
        expect(error).toMatchObject({ retryable: true });
        publishRetries++;
        await sleep(250);
      }
    }
  };

  await Promise.all(Array.from({ length: TOTAL / 2 }, (_, n) => publish(n)));

  // Watch the broker through the bus's own health check: up, then down, then up again.
  let sawDown = false;
  let sawUpAgain = false;
  const watching = (async () => {
    const until = Date.now() + WAIT_FOR_RESTART_MS;
    while (!sawUpAgain && Date.now() < until) {
      const { ok } = await opened.check();
      if (!ok) sawDown = true;
      else if (sawDown) sawUpAgain = true;
      await sleep(200);
    }
  })();
  console.log(`\n>>> restart the broker now (keeping its data); waiting up to ${WAIT_FOR_RESTART_MS / 1000} s\n`);

  // The third quarter trickles out while the person gets to the broker; the last quarter waits for the outage to
  // begin, so it is published while the broker is away (each publish retried until it lands) and after.
  for (let n = TOTAL / 2; n < (TOTAL * 3) / 4; n++) {
    await publish(n);
    await sleep(20);
  }
  const until = Date.now() + WAIT_FOR_RESTART_MS;
  while (!sawDown && Date.now() < until) await sleep(50);
  for (let n = (TOTAL * 3) / 4; n < TOTAL; n++) {
    await publish(n);
    await sleep(20);
  }
  await watching;
  expect(sawDown, 'the broker was never seen going away: restart it while the test waits').toBe(true);
  expect(sawUpAgain, 'the broker was never seen coming back').toBe(true);

  await waitFor(() => handled.size === TOTAL, `all ${TOTAL} messages handled (have ${handled.size})`, 180_000);
  const missing = [...Array(TOTAL).keys()].filter((n) => !handled.has(n));
  expect(missing).toEqual([]);
  console.log(
    `handled ${handled.size} distinct messages in ${deliveries} deliveries; ${publishRetries} publish retries`,
  );
  await subscription.stop();
});
