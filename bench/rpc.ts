// RPC round trips through Gantry (`ctx.request`: validation, policy, service token, transport) next to each raw
// client's own request/reply in the same run. One caller, calls one after another: latency, not broker throughput.
import { randomUUID } from 'node:crypto';
import { service, t } from 'gantry';
import { rpcTarget } from 'gantry/calls';
import { startTestHost } from 'gantry/testing';
import { continueTracking } from '../src/tracking/trace-context.ts';

/** One measured path. */
export interface RpcBenchRow {
  name: string;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

const echo = service({ name: 'bench-echo', version: '1.0.0' }).rpc(
  'echo',
  { input: t.Object({ n: t.Integer() }), output: t.Object({ n: t.Integer() }) },
  ({ n }) => ({ n }),
);
const caller = service({ name: 'bench-caller', version: '1.0.0' });

async function measure(name: string, calls: number, once: (i: number) => Promise<unknown>): Promise<RpcBenchRow> {
  for (let i = 0; i < Math.min(200, calls); i++) await once(i);
  const times: number[] = [];
  const began = performance.now();
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await once(i);
    times.push(performance.now() - start);
  }
  const total = performance.now() - began;
  times.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round((times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0) * 1000) / 1000;
  return { name, callsPerSec: Math.round((calls / total) * 1000), p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function gantry(name: string, url: string, calls: number): Promise<RpcBenchRow> {
  const host = { calls: { rpc: url }, logLevel: 'warn' };
  // The in-process transport belongs to one host: both services share it there; brokers get a host each.
  const inProcess = url.startsWith('memory:');
  const server = await startTestHost({ services: inProcess ? [echo, caller] : [echo], config: { host } });
  const client = inProcess ? server : await startTestHost({ services: [caller], config: { host } });
  try {
    const runtime = client.host.runtime('bench-caller');
    const target = rpcTarget(echo, 'echo');
    const tracking = continueTracking();
    const ctx = runtime.eventContext('bench', tracking, client.host.log, new AbortController().signal);
    return await measure(`gantry ${name}`, calls, (i) => ctx.request(target, { n: i }, { timeout: 5_000 }));
  } finally {
    if (!inProcess) await client.stop();
    await server.stop();
  }
}

async function rawNats(calls: number): Promise<RpcBenchRow> {
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const subject = `bench.raw.${randomUUID()}`;
  nc.subscribe(subject, {
    queue: 'q',
    callback: (_e, msg) => {
      msg.respond(msg.data);
    },
  });
  await nc.flush();
  const body = new TextEncoder().encode('{"n":1}');
  try {
    return await measure('raw nats request', calls, () => nc.request(subject, body, { timeout: 5_000 }));
  } finally {
    await nc.close();
  }
}

/** How long a raw call may wait for its reply: a reply lost on the way fails the path instead of hanging the run. */
const RAW_REPLY_TIMEOUT_MS = 5_000;

/** Sends call `id` and waits for `waiting` to be told of its reply, for {@link RAW_REPLY_TIMEOUT_MS} at most. */
function awaitReply(waiting: Map<string, () => void>, id: string, send: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`no reply to call ${id} within ${RAW_REPLY_TIMEOUT_MS} ms`));
    }, RAW_REPLY_TIMEOUT_MS);
    waiting.set(id, () => {
      clearTimeout(timer);
      waiting.delete(id);
      resolve();
    });
    send();
  });
}

async function rawAmqp(calls: number): Promise<RpcBenchRow> {
  const amqp = await import('amqplib');
  const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672', { noDelay: true });
  const server = await conn.createChannel();
  const queue = `bench.raw.${randomUUID()}`;
  await server.assertQueue(queue, { durable: false, autoDelete: true });
  await server.consume(queue, (msg) => {
    if (!msg) return;
    server.sendToQueue(msg.properties.replyTo as string, msg.content, {
      correlationId: msg.properties.correlationId as string,
    });
    server.ack(msg);
  });
  const client = await conn.createChannel();
  const waiting = new Map<string, () => void>();
  await client.consume(
    'amq.rabbitmq.reply-to',
    (msg) => msg && waiting.get(msg.properties.correlationId as string)?.(),
    { noAck: true },
  );
  try {
    return await measure('raw amqp direct reply-to', calls, (i) => {
      const id = String(i) + randomUUID();
      return awaitReply(waiting, id, () =>
        client.publish('', queue, Buffer.from('{"n":1}'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: id }),
      );
    });
  } finally {
    await conn.close();
  }
}

async function rawRedis(calls: number): Promise<RpcBenchRow> {
  // Redis has no request/reply of its own: the baseline is the same list-and-channel round trip, hand-written.
  const { Redis } = await import('ioredis');
  const [commands, reader, subscriber] = [new Redis(), new Redis(), new Redis()];
  const key = `bench:raw:${randomUUID()}`;
  const channel = `${key}:reply`;
  const waiting = new Map<string, () => void>();
  subscriber.on('message', (_c: string, id: string) => waiting.get(id)?.());
  await subscriber.subscribe(channel);
  let running = true;
  const serve = (async () => {
    while (running) {
      const popped = await reader.blpop(key, 1).catch(() => null);
      if (popped) await commands.publish(channel, popped[1]);
    }
  })();
  try {
    return await measure('raw ioredis list + pub/sub', calls, (i) =>
      awaitReply(waiting, `${i}`, () => {
        void commands.rpush(key, `${i}`);
      }),
    );
  } finally {
    running = false;
    reader.disconnect();
    await serve;
    commands.disconnect();
    subscriber.disconnect();
  }
}

/** Runs every path: each transport through Gantry, then each raw client, in one run. */
export async function benchRpc(options: { calls: number }): Promise<RpcBenchRow[]> {
  const { calls } = options;
  const prefix = randomUUID().slice(0, 8);
  const paths: [string, () => Promise<RpcBenchRow>][] = [
    ['gantry nats', () => gantry('nats', `nats://127.0.0.1:4222?prefix=b${prefix}`, calls)],
    ['raw nats', () => rawNats(calls)],
    ['gantry amqp', () => gantry('amqp', 'amqp://guest:guest@127.0.0.1:5672', calls)],
    ['raw amqp', () => rawAmqp(calls)],
    ['gantry redis', () => gantry('redis', `redis://127.0.0.1:6379?prefix=bench-${prefix}:`, calls)],
    ['raw redis', () => rawRedis(calls)],
    ['gantry in-process', () => gantry('in-process', 'memory:', calls)],
  ];
  const rows: RpcBenchRow[] = [];
  for (const [name, run] of paths) {
    // One path failing (a broker missing) still leaves the others' figures.
    rows.push(
      await run().catch((error: unknown) => {
        console.error(`${name}: ${(error as Error).message}`);
        return { name, callsPerSec: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN };
      }),
    );
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await benchRpc({ calls: Number(process.env.BENCH_CALLS ?? 5_000) }));
}
