// The Redis Streams bus against raw ioredis doing the same acknowledged work: publish, consume in a group, ack.
// Run alone with `npx tsx bench/bus-redis.ts [messages] [url]`.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { createRedisStreamsBus } from '../src/bus/redis/index.ts';
import { benchData, type Figures, figures, measureAdapter, median, medianOf } from './bus-measure.ts';
import type { BusBenchRow } from './bus-types.ts';

/** Messages published per batch, by both sides: one pipeline of XADDs (raw), or that many concurrent publishes. */
const PUBLISH_BATCH = 500;
/** Entries asked for per XREADGROUP by the raw consumer, as the adapter's subscription of concurrency 100 does. */
const READ_COUNT = 100;
/** Cap the adapter applies by default; the raw producer trims the same way, so both write the same commands. */
const MAX_LEN = 1_000_000;
/** Measured rounds of each side. */
const ROUNDS = 5;

/** A side's figures, plus what it cost in CPU per message. */
export interface RedisBenchRow extends BusBenchRow {
  /**
   * CPU time of this process (JavaScript, client, sockets) per message, in microseconds: steadier than msg/s on a
   * shared host. The server's share is not counted (one Redis process serves every client on the host).
   */
  clientCpuUs: number;
  /**
   * CPU time of the Redis server per message, in microseconds, from `INFO cpu`: the adapter appends a batch with a
   * script, which moves some work from the client to the server, so both shares are shown. Includes whatever other
   * clients of the server did meanwhile.
   */
  serverCpuUs: number;
}

/** One round of a side. */
interface Round extends Figures {
  clientCpuUs: number;
  serverCpuUs: number;
}

/**
 * Measures `messages` messages going publish → consume → ack twice in one run against the server at `url`: raw
 * ioredis as an expert would write it (pipelined XADD, XREADGROUP COUNT 100, one XACK per batch on a second
 * connection), then the Gantry adapter through the `Bus` interface (publish, subscribe with concurrency 100, ack).
 * Producer and consumer share the process; latency is from the publish time stamped in the body to the handler.
 */
export async function benchRedis(options: { messages: number; url: string }): Promise<RedisBenchRow[]> {
  const prefix = `gantry-bench-${randomBytes(4).toString('hex')}:`;
  const admin = new Redis(options.url, { maxRetriesPerRequest: 1 });
  try {
    // A short unrecorded run of each side first, so neither pays for JIT warm-up in the figures.
    const warmup = options.messages;
    await rawRun(options.url, `${prefix}warm-raw`, warmup);
    await adapterRun(options.url, prefix, 'warm-adapter', warmup);
    // Rounds alternate the two sides and each reports its median round, so a burst of load from other processes on
    // the machine lands on one round of one side rather than skewing the ratio.
    const raw: Round[] = [];
    const adapter: Round[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      raw.push(
        await costed(admin, options.messages, () => rawRun(options.url, `${prefix}raw-${round}`, options.messages)),
      );
      adapter.push(
        await costed(admin, options.messages, () =>
          adapterRun(options.url, prefix, `adapter-${round}`, options.messages),
        ),
      );
      await deleteKeys(admin, prefix);
    }
    const medianCpu = (rounds: Round[]) => ({
      clientCpuUs: medianOf(rounds, (round) => round.clientCpuUs),
      serverCpuUs: medianOf(rounds, (round) => round.serverCpuUs),
    });
    return [
      { name: 'raw ioredis', ...median(raw), ...medianCpu(raw) },
      { name: 'gantry redis', ...median(adapter), ...medianCpu(adapter) },
    ];
  } finally {
    await deleteKeys(admin, prefix);
    admin.disconnect();
  }
}

/** Runs one round of a side, with the CPU time this process and the server spent on it per message. */
async function costed(admin: Redis, messages: number, run: () => Promise<Figures>): Promise<Round> {
  const server = await serverCpuSeconds(admin);
  const cpu = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(cpu);
  const serverUsed = (await serverCpuSeconds(admin)) - server;
  return { ...result, clientCpuUs: (used.user + used.system) / messages, serverCpuUs: (serverUsed * 1e6) / messages };
}

/** CPU seconds the server has used since it started (all its threads), from `INFO cpu`. */
async function serverCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const seconds = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return seconds('used_cpu_user') + seconds('used_cpu_sys');
}

async function rawRun(url: string, key: string, messages: number): Promise<Figures> {
  const producer = new Redis(url);
  const reader = new Redis(url);
  const acker = new Redis(url);
  const group = 'bench';
  await producer.xgroup('CREATE', key, group, '$', 'MKSTREAM');
  const latencies: number[] = [];
  const acks: Promise<unknown>[] = [];
  const started = performance.now();

  const consume = (async () => {
    while (latencies.length < messages) {
      const reply = (await reader.xreadgroup(
        'GROUP',
        group,
        'c1',
        'COUNT',
        READ_COUNT,
        'BLOCK',
        1_000,
        'STREAMS',
        key,
        '>',
      )) as [string, [string, string[]][]][] | null;
      if (!reply) continue;
      const ids: string[] = [];
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          const body = JSON.parse(fields[1] as string) as { t: number };
          latencies.push(performance.now() - body.t);
          ids.push(id);
        }
      }
      acks.push(acker.xack(key, group, ...ids));
    }
    await Promise.all(acks);
  })();

  for (let sent = 0; sent < messages; sent += PUBLISH_BATCH) {
    const pipeline = producer.pipeline();
    for (let n = sent; n < Math.min(messages, sent + PUBLISH_BATCH); n++) {
      pipeline.xadd(key, 'MAXLEN', '~', MAX_LEN, '*', 'body', JSON.stringify(benchData(n, performance.now())));
    }
    await pipeline.exec();
  }
  await consume;
  const elapsed = performance.now() - started;
  producer.disconnect();
  reader.disconnect();
  acker.disconnect();
  return figures(messages, elapsed, latencies);
}

async function adapterRun(url: string, prefix: string, stream: string, messages: number): Promise<Figures> {
  const bus = await createRedisStreamsBus(new URL(`${url}?prefix=${encodeURIComponent(prefix)}`), {
    instanceId: 'bench',
  });
  return measureAdapter(bus, stream, messages);
}

async function deleteKeys(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const messages = Number(process.argv[2] ?? 20_000);
  const url = process.argv[3] ?? 'redis://127.0.0.1:6379';
  const rows = await benchRedis({ messages, url });
  const base = rows[0] as RedisBenchRow;
  for (const row of rows) {
    const ratio = (row.msgsPerSec / base.msgsPerSec).toFixed(2);
    console.log(
      `${row.name.padEnd(16)}${row.msgsPerSec.toFixed(0).padStart(9)} msg/s  p99 ${row.p99Ms.toFixed(1).padStart(7)} ms  ratio ${ratio}  client ${row.clientCpuUs.toFixed(1).padStart(5)} µs/msg  server ${row.serverCpuUs.toFixed(1).padStart(4)} µs/msg`,
    );
  }
}
