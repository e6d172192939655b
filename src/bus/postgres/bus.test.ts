import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { waitFor } from '../../testing/index.ts';
import { createEnvelope } from '../envelope.ts';
import { PostgresLogBus } from './bus.ts';
import { type PostgresBusClient, pgliteBusClient } from './client.ts';
import { BUS_PLANNER_SETTINGS } from './open.ts';
import { busStatements } from './schema.ts';

const database = new PGlite();
const schema = 'gantry_bus_slots';
const statements = busStatements(schema);

beforeAll(async () => {
  await database.exec(BUS_PLANNER_SETTINGS.map((setting) => `SET ${setting};`).join(' '));
}, 60_000);

afterAll(async () => {
  await database.close();
});

/**
 * A bus on the shared PGlite whose ack DELETEs wait at a gate until `open()`, so a test can look at a subscription
 * while its acks are on their way. Counts the claims and the DELETEs that reached the gate.
 */
function gatedBus(): { bus: PostgresLogBus; open: () => void; counts: { claims: number; acksHeld: number } } {
  const base = pgliteBusClient(database, { ownsDatabase: false });
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const counts = { claims: 0, acksHeld: 0 };
  const client: PostgresBusClient = {
    embedded: base.embedded,
    exec: (script) => base.exec(script),
    listen: (channel, onNotify) => base.listen(channel, onNotify),
    close: () => base.close(),
    async query<Row>(text: string, values?: unknown[]) {
      if (text === statements.claim) counts.claims++;
      if (text === statements.ack) {
        counts.acksHeld++;
        await gate;
      }
      return base.query<Row>(text, values);
    },
  };
  const bus = new PostgresLogBus(client, { schema, pollIntervalMs: 50, cleanupIntervalMs: 0 });
  // A failed test must not leave statements waiting at the gate behind it.
  onTestFinished(async () => {
    open();
    await bus.close();
  });
  return { bus, open, counts };
}

/** Lets pending timers, I/O callbacks and microtasks run a few times over. */
async function turns(count = 10): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('postgres bus slots', () => {
  it('frees a slot when the handler acks, before the DELETE commits, and bounds handlers awaiting acks', async () => {
    const { bus, open, counts } = gatedBus();
    const stream = `slots.${Math.random().toString(36).slice(2)}`;
    const started: number[] = [];
    const subscription = await bus.subscribe(
      stream,
      'g',
      async (delivery) => {
        started.push((delivery.envelope?.data as { n: number } | undefined)?.n ?? 0);
        await delivery.ack();
      },
      { concurrency: 1, consumerName: 'c1' },
    );
    for (let n = 1; n <= 3; n++)
      await bus.publish(stream, createEnvelope({ stream, data: { n }, source: 'test@1.0.0' }));
    // The second message comes while the first one's ack is still held: its handler settled, so its slot is free.
    await waitFor(() => started.length === 2 && counts.acksHeld === 2, 'two handlers awaiting their acks', 15_000);
    // Both handlers still await the server: they fill the second `concurrency`, so nothing more is claimed.
    const claims = counts.claims;
    await turns();
    expect(started).toEqual([1, 2]);
    expect(counts.claims).toBe(claims);
    open();
    await waitFor(() => started.length === 3, 'the third message', 15_000);
    await subscription.stop();
    expect(started).toEqual([1, 2, 3]);
    expect((await bus.stats(stream, 'g')).lag).toBe(0);
  });

  it('waits on stop for acks its handlers did not await', async () => {
    const { bus, open, counts } = gatedBus();
    const stream = `unawaited.${Math.random().toString(36).slice(2)}`;
    const subscription = await bus.subscribe(
      stream,
      'g',
      async (delivery) => {
        void delivery.ack();
      },
      { concurrency: 4, consumerName: 'c1' },
    );
    await bus.publish(stream, createEnvelope({ stream, data: { n: 1 }, source: 'test@1.0.0' }));
    await waitFor(() => counts.acksHeld === 1, 'the ack to be on its way', 15_000);
    let stopped = false;
    const stopping = subscription.stop().then(() => {
      stopped = true;
    });
    await turns();
    expect(stopped).toBe(false);
    open();
    await stopping;
    expect((await bus.stats(stream, 'g')).lag).toBe(0);
  });
});
