import { randomBytes } from 'node:crypto';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { connect, createInbox, errors, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNatsUrl } from '../../src/bus/nats/index.ts';
import { NatsPublisher } from '../../src/bus/nats/publisher.ts';

const server = process.env.GANTRY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `pub${randomBytes(4).toString('hex')}`;
const stream = `${prefix.toUpperCase()}_S`;
const subject = `${prefix}.s`;
const publishErrors = {
  timeout: errors.TimeoutError,
  noResponders: errors.NoRespondersError,
  api: JetStreamApiError,
  closed: errors.ClosedConnectionError,
};

let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: parseNatsUrl(new URL(server), 'it-publisher').servers });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [subject] });
});

afterAll(async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(stream);
  await nc.close();
});

function msgId(id: string): ReturnType<typeof headers> {
  const hdrs = headers();
  hdrs.set('Nats-Msg-Id', id);
  return hdrs;
}

describe('nats publisher (JetStream publish with acks on one inbox)', () => {
  it('resolves once the stream stored the message, and the stream drops a repeated message id', async () => {
    const publisher = new NatsPublisher(nc, createInbox(), publishErrors);
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(stream)).state.messages;
    await Promise.all([
      publisher.publish(subject, '{"n":1}', msgId('a'), 5_000),
      publisher.publish(subject, '{"n":2}', msgId('b'), 5_000),
    ]);
    await publisher.publish(subject, '{"n":1}', msgId('a'), 5_000);
    expect((await jsm.streams.info(stream)).state.messages).toBe(before + 2);
    publisher.close();
  });

  it('rejects with NoResponders when no stream takes the subject', async () => {
    const publisher = new NatsPublisher(nc, createInbox(), publishErrors);
    const error = await publisher.publish(`${prefix}.nostream`, '{}', msgId('x'), 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(errors.NoRespondersError);
    publisher.close();
  });

  it("rejects with the server's refusal as a JetStreamApiError carrying its code", async () => {
    const publisher = new NatsPublisher(nc, createInbox(), publishErrors);
    const hdrs = msgId('y');
    hdrs.set('Nats-Expected-Stream', 'NOT_THIS_ONE');
    const error = await publisher.publish(subject, '{}', hdrs, 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetStreamApiError);
    expect((error as JetStreamApiError).code).toBe(10060);
    publisher.close();
  });

  it('times a publish out when nothing acks it, and fails what is pending on close', async () => {
    const silent = `${prefix}.silent`;
    // A plain subscriber answers nothing: the server sees a responder, so only the deadline ends the wait.
    const sub = nc.subscribe(silent, { callback: () => undefined });
    await nc.flush();
    const publisher = new NatsPublisher(nc, createInbox(), publishErrors);
    const timedOut = await publisher.publish(silent, '{}', msgId('t'), 200).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(errors.TimeoutError);
    const pending = publisher.publish(silent, '{}', msgId('u'), 60_000).catch((e: unknown) => e);
    publisher.close();
    expect(await pending).toBeInstanceOf(errors.ClosedConnectionError);
    sub.unsubscribe();
  });
});
