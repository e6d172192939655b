import type { Bus, Delivery } from './bus.ts';
import type { DeadLetter } from './consumer.ts';
import type { Envelope } from './envelope.ts';

/** The consumer group operators read dead letters through; created at start so it sees every dead letter. */
export const DEAD_LETTER_GROUP = 'gantry-dlq';

/** How long a read waits for more messages once none arrive. */
const IDLE_MS = 300;

/**
 * Makes sure the operators' group exists on the dead-letter stream of each stream, so that dead letters published
 * from now on are kept for it. Groups only see messages published after they were first subscribed.
 */
export async function ensureDeadLetterGroups(bus: Bus, streams: Iterable<string>, consumerName: string): Promise<void> {
  for (const stream of streams) {
    const subscription = await bus.subscribe(
      `${stream}.dlq`,
      DEAD_LETTER_GROUP,
      async (delivery) => delivery.retry(0),
      {
        concurrency: 1,
        consumerName,
      },
    );
    await subscription.stop();
  }
}

/**
 * Reads up to `max` dead letters of `stream`, handing each to `settle`, and returns when `max` were read or none
 * arrived for a moment. With `hold`, each delivery keeps its slot until the read ends and is then given back at once,
 * so none is read twice and all stay in the dead-letter stream.
 */
async function readDeadLetters(
  bus: Bus,
  stream: string,
  max: number,
  consumerName: string,
  settle: (letter: DeadLetter | null, delivery: Delivery) => Promise<void>,
  hold = false,
): Promise<number> {
  let count = 0;
  let last = Date.now();
  let done = false;
  const seen = new Set<string>();
  const held: Delivery[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const subscription = await bus.subscribe(
    `${stream}.dlq`,
    DEAD_LETTER_GROUP,
    async (delivery) => {
      const id = delivery.envelope?.id ?? '';
      if (done || count >= max || seen.has(id)) {
        await delivery.retry(0);
        return;
      }
      seen.add(id);
      count++;
      last = Date.now();
      await settle((delivery.envelope?.data as DeadLetter | undefined) ?? null, delivery);
      if (hold) {
        held.push(delivery);
        await released;
      }
    },
    { concurrency: hold ? max : 16, consumerName },
  );
  while (count < max && Date.now() - last < IDLE_MS) await new Promise((resolve) => setTimeout(resolve, 50));
  done = true;
  for (const delivery of held) await delivery.retry(0);
  release();
  await subscription.stop();
  return count;
}

/** Lists up to `max` dead letters of `stream` without removing them. */
export async function peekDeadLetters(
  bus: Bus,
  stream: string,
  max: number,
  consumerName: string,
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  await readDeadLetters(
    bus,
    stream,
    max,
    consumerName,
    async (letter) => {
      if (letter) letters.push(letter);
    },
    true,
  );
  return letters;
}

/**
 * Publishes up to `max` dead letters of `stream` back to it (the original envelope, same id, so inboxes still
 * deduplicate) and removes them from the dead-letter stream. Undecodable ones stay.
 */
export async function replayDeadLetters(
  bus: Bus,
  stream: string,
  max: number,
  consumerName: string,
): Promise<{ replayed: string[]; kept: number }> {
  const replayed: string[] = [];
  let kept = 0;
  await readDeadLetters(bus, stream, max, consumerName, async (letter, delivery) => {
    const original: Envelope | null | undefined = letter?.original;
    if (!original) {
      kept++;
      await delivery.retry(60_000);
      return;
    }
    await bus.publish(stream, original);
    await delivery.ack();
    replayed.push(original.id);
  });
  return { replayed, kept };
}
