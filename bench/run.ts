// `npm run bench`: every benchmark against its baseline in the same run, printed as ratios.
//   BENCH_SECONDS   length of each HTTP measurement (default 10)
//   BENCH_MESSAGES  messages per bus run (default 20000)
//   BENCH_ONLY      comma-separated parts to run: http, observe, redis, nats, amqp, postgres, pglite, kafka, jobs, rpc
//                   (default all but kafka)
//   KAFKA_URL       adds the Kafka adapter against this broker
import { mkdirSync, writeFileSync } from 'node:fs';
import { benchAmqp } from './bus-amqp.ts';
import { benchKafka } from './bus-kafka.ts';
import { benchNats } from './bus-nats.ts';
import { benchPglite } from './bus-pglite.ts';
import { benchPostgres } from './bus-postgres.ts';
import { benchRedis } from './bus-redis.ts';
import type { BusBenchRow } from './bus-types.ts';
import { benchHttp } from './http.ts';
import { benchJobs } from './jobs.ts';
import { benchObserve, printObserve } from './observe.ts';
import { benchRpc } from './rpc.ts';

const durationSec = Number(process.env.BENCH_SECONDS ?? 10);
const messages = Number(process.env.BENCH_MESSAGES ?? 20_000);
const only = new Set(
  (
    process.env.BENCH_ONLY ??
    `http,observe,redis,nats,amqp,postgres,pglite,jobs,rpc${process.env.KAFKA_URL ? ',kafka' : ''}`
  ).split(','),
);
const results: Record<string, unknown> = { at: new Date().toISOString(), node: process.version };

if (only.has('http')) {
  const http = await benchHttp({ durationSec });
  results.http = http;
  console.log(
    '\nHTTP: the example customers API, 50 connections, logging on; store in memory (framework cost) and on PGlite',
  );
  console.log('scenario                    server          req/s      p99 ms   ratio');
  for (const scenario of [...new Set(http.map((r) => r.scenario))]) {
    const base = http.find((r) => r.scenario === scenario && r.server === 'bare Fastify');
    for (const row of http.filter((r) => r.scenario === scenario)) {
      const ratio = base ? (row.requestsPerSec / base.requestsPerSec).toFixed(2) : '-';
      console.log(
        `${scenario.padEnd(28)}${row.server.padEnd(14)}${row.requestsPerSec.toFixed(0).padStart(8)}${row.p99Ms.toFixed(1).padStart(11)}${ratio.padStart(8)}`,
      );
    }
  }
}

if (only.has('observe')) {
  // Metrics and tracing on against off, the servers measured in turn in the same run.
  const observe = await benchObserve({ durationSec });
  results.observe = observe;
  printObserve(observe);
}

const buses: [string, () => Promise<BusBenchRow[]>][] = [
  ['redis', () => benchRedis({ messages, url: 'redis://127.0.0.1:6379' })],
  ['nats', () => benchNats({ messages, url: 'nats://127.0.0.1:4222' })],
  ['amqp', () => benchAmqp({ messages, url: 'amqp://guest:guest@127.0.0.1:5672', envelopeReference: true })],
  ['postgres', () => benchPostgres({ messages, url: 'postgres://postgres@127.0.0.1:5432/test' })],
  ['pglite', () => benchPglite({ messages })],
  ['kafka', () => benchKafka({ messages, url: process.env.KAFKA_URL ?? '' })],
];
const busRows: Record<string, BusBenchRow[]> = {};
for (const [name, run] of buses) {
  if (!only.has(name)) continue;
  busRows[name] = await run();
}
if (Object.keys(busRows).length > 0) {
  results.buses = busRows;
  console.log(
    `\nStreams: ${messages} messages published, consumed and acknowledged; the first row of each is the raw client`,
  );
  console.log('adapter     measured                         msgs/s     p99 ms   ratio');
  for (const [name, rows] of Object.entries(busRows)) {
    const base = rows[0];
    for (const row of rows) {
      const ratio = base ? (row.msgsPerSec / base.msgsPerSec).toFixed(2) : '-';
      console.log(
        `${name.padEnd(12)}${row.name.padEnd(30)}${row.msgsPerSec.toFixed(0).padStart(9)}${row.p99Ms.toFixed(1).padStart(11)}${ratio.padStart(8)}`,
      );
    }
  }
}

if (only.has('jobs')) {
  const rows = await benchJobs({
    jobs: Number(process.env.BENCH_JOBS ?? 5_000),
    url: 'postgres://postgres@127.0.0.1:5432/postgres',
  });
  results.jobs = rows;
  console.log('\nJobs on PostgreSQL: the first row is raw SQL doing the same claim and complete');
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(30)}${row.jobsPerSec.toFixed(0).padStart(9)} jobs/s  p99 ${row.p99Ms.toFixed(1)} ms  ratio ${(row.jobsPerSec / (rows[0]?.jobsPerSec ?? 1)).toFixed(2)}`,
    );
  }
}

if (only.has('rpc')) {
  try {
    const rows = await benchRpc({ calls: Number(process.env.BENCH_CALLS ?? 5_000) });
    results.rpc = rows;
    console.log('\nRPC round trips, each transport next to its raw client');
    for (const row of rows) {
      console.log(
        `${row.name.padEnd(30)}${row.callsPerSec.toFixed(0).padStart(9)} calls/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms`,
      );
    }
  } catch (error) {
    // Reported, not hidden: the other figures still print.
    results.rpc = { error: String(error) };
    console.log(`\nRPC benchmark failed: ${String(error)}`);
  }
}

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL(`./results/bench-${Date.now()}.json`, import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
