import type { Bus } from '../src/bus/bus.ts';
import { createEnvelope } from '../src/bus/envelope.ts';

/** Throughput and tail latency of one run. */
export interface Figures {
  msgsPerSec: number;
  p99Ms: number;
}

/**
 * The application data of message `n`, the same on both sides of every bus benchmark: a change event shaped like the
 * example's `customers.changed` (about 400 bytes of JSON), with the publish time `t` the consumer measures latency
 * from. Raw clients send it as their message body; Gantry sends it as its envelope's data.
 */
export function benchData(n: number, t: number): { n: number; t: number } & Record<string, unknown> {
  const id = `0b5f6a3c-8e2d-4f7a-9c1b-${n.toString(16).padStart(12, '0')}`;
  const customer = { id, name: `Customer ${n}`, email: `customer-${n}@example.com`, version: 2 };
  return {
    n,
    t,
    customerId: id,
    change: 'updated',
    version: 2,
    before: { ...customer, name: `Customer ${n} (old)`, version: 1 },
    after: customer,
    changedBy: 'bench',
    changedAt: '2026-11-23T12:00:00.000Z',
  };
}

/** Messages published at once before waiting for the broker's confirmations. */
const PUBLISH_BATCH = 500;

/**
 * The adapter side of every bus benchmark: publish `messages` envelopes in batches while one subscription (of
 * `concurrency`) acks them, timed from the first publish to the settled last ack; latency from the publish time in
 * the body to the handler. Closes the bus.
 */
export async function measureAdapter(bus: Bus, stream: string, messages: number, concurrency = 100): Promise<Figures> {
  const latencies: number[] = [];
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const subscription = await bus.subscribe(
    stream,
    'bench',
    async (delivery) => {
      const data = delivery.envelope?.data as { t: number };
      latencies.push(performance.now() - data.t);
      await delivery.ack();
      if (latencies.length === messages) finished();
    },
    { concurrency, consumerName: 'c1' },
  );
  const started = performance.now();
  for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
    const batch: Promise<void>[] = [];
    for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
      batch.push(
        bus.publish(stream, createEnvelope({ stream, data: benchData(n, performance.now()), source: 'bench@1.0.0' })),
      );
    }
    await Promise.all(batch);
  }
  await done;
  // `stop()` resolves once the last handlers have settled and their acks are through.
  await subscription.stop();
  const elapsed = performance.now() - started;
  await bus.close();
  return figures(messages, elapsed, latencies);
}

/** Figures of a run of `messages` that took `elapsedMs`, with one latency per message. */
export function figures(messages: number, elapsedMs: number, latencies: number[]): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
  return { msgsPerSec: messages / (elapsedMs / 1_000), p99Ms: p99 };
}

/** The round with the median throughput, with its own latency. */
export function median(rounds: Figures[]): Figures {
  const sorted = [...rounds].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  return sorted[Math.floor(sorted.length / 2)] as Figures;
}

/**
 * The median of one figure over the rounds (the upper middle value of an even count), taken apart from throughput: a
 * side's median CPU per message need not come from its median-throughput round.
 */
export function medianOf<R>(rounds: readonly R[], figure: (round: R) => number): number {
  const sorted = rounds.map(figure).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
