// The cost of observability: the example's HTTP events on bare Fastify, on Gantry, and on Gantry with the metrics and
// tracing plugins on, in the same run, each server alone in its own process. Run alone with
// `node bench/observe.ts` (BENCH_SECONDS sets each measurement's length), or in `npm run bench` with
// `BENCH_ONLY=observe`.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

/** One measured scenario of one server. */
export interface ObserveBenchRow {
  server: 'bare Fastify' | 'Gantry' | 'Gantry + metrics + tracing';
  scenario: string;
  requestsPerSec: number;
  p99Ms: number;
  /** CPU time the server process spent per request served, in µs (Linux only; NaN elsewhere). */
  cpuUsPerRequest: number;
}

/** The rows and the ratios the issue asks for. */
export interface ObserveBenchResult {
  rows: ObserveBenchRow[];
  /** Requests per second of Gantry with metrics and tracing over Gantry without them: the median of per-round ratios. */
  observedOverBare: number;
  /** Requests per second of Gantry with metrics and tracing over bare Fastify: the median of per-round ratios. */
  observedOverFastify: number;
  /**
   * CPU per request of Gantry with metrics and tracing over Gantry without them (median of per-round ratios): steadier
   * than requests per second on a machine shared with other work, since it does not count the time spent waiting.
   */
  cpuObservedOverBare: number;
}

const servers: { name: ObserveBenchRow['server']; file: string; env: Record<string, string> }[] = [
  { name: 'bare Fastify', file: new URL('./servers/fastify-server.ts', import.meta.url).pathname, env: {} },
  {
    name: 'Gantry',
    file: new URL('./servers/gantry-observed-server.ts', import.meta.url).pathname,
    env: { OBSERVE: 'off' },
  },
  {
    name: 'Gantry + metrics + tracing',
    file: new URL('./servers/gantry-observed-server.ts', import.meta.url).pathname,
    env: { OBSERVE: 'on' },
  },
];

async function startServer(file: string, port: number, env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(file, [], {
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'info' },
    // Node's own type stripping, as `bin/gantry.js` runs Gantry: tsx's transform would add work of its own.
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return child;
}

/** CPU time (user + system) a process has used so far, in µs, read from /proc; NaN where there is no /proc. */
function cpuMicros(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime, in clock ticks of 10 ms on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

async function load(
  url: string,
  durationSec: number,
  request: autocannon.Request,
): Promise<{ rps: number; p99: number; total: number }> {
  const result = await autocannon({ url, connections: 50, duration: durationSec, requests: [request] });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total };
}

/**
 * Measures GET one and POST validated over the in-memory store (the framework's own cost, where observability weighs
 * most) on the three servers. The servers run side by side and are measured in turn, `rounds` times each, in a
 * rotating order; each round compares the servers a few seconds apart, and the ratios are the medians of the
 * per-round ratios, so a change in the machine's load during the run weighs on every side alike.
 */
export async function benchObserve(options: {
  durationSec: number;
  rounds?: number;
  port?: number;
}): Promise<ObserveBenchResult> {
  const rounds = options.rounds ?? 5;
  const slice = Math.max(1, Math.round(options.durationSec / rounds));
  let port = options.port ?? 39_200;
  const started: { server: (typeof servers)[number]; child: ChildProcess; base: string; id: string }[] = [];
  try {
    for (const server of servers) {
      port++;
      progress(`starting ${server.name} on port ${port}`);
      const child = await startServer(server.file, port, server.env);
      const base = `http://127.0.0.1:${port}`;
      const seeded = await fetch(`${base}/mem/customers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Seed', email: 'seed@example.com' }),
      });
      const { id } = (await seeded.json()) as { id: string };
      started.push({ server, child, base, id });
      // A short warm-up, so the JIT has seen the routes before anything is measured.
      await load(base, 2, { method: 'GET', path: `/mem/customers/${id}` });
    }
    let n = 0;
    const scenarios: [string, (id: string) => autocannon.Request][] = [
      ['GET one (in memory)', (id) => ({ method: 'GET', path: `/mem/customers/${id}` })],
      [
        'POST validated (in memory)',
        () => ({
          method: 'POST',
          path: '/mem/customers',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({ name: `Bench ${n}`, email: `bench-${n++}@example.com` }),
          }),
        }),
      ],
    ];
    const rows: ObserveBenchRow[] = [];
    const overBare: number[] = [];
    const overFastify: number[] = [];
    const cpuOverBare: number[] = [];
    for (const [scenario, request] of scenarios) {
      const measured = started.map(() => [] as Measured[]);
      for (let round = 0; round < rounds; round++) {
        for (let turn = 0; turn < started.length; turn++) {
          const index = (round + turn) % started.length;
          const entry = started[index] as (typeof started)[number];
          const cpuBefore = cpuMicros(entry.child.pid);
          const run = await load(entry.base, slice, request(entry.id));
          const cpu = (cpuMicros(entry.child.pid) - cpuBefore) / run.total;
          progress(
            `${scenario}, round ${round + 1} of ${rounds}: ${entry.server.name} ${run.rps.toFixed(0)} req/s, ${cpu.toFixed(0)} µs CPU/req`,
          );
          (measured[index] as Measured[]).push({ rps: run.rps, p99: run.p99, cpu });
        }
        const at = (index: number): Measured => measured[index]?.[round] as Measured;
        overBare.push(at(2).rps / at(1).rps);
        overFastify.push(at(2).rps / at(0).rps);
        cpuOverBare.push(at(2).cpu / at(1).cpu);
      }
      for (const [index, entry] of started.entries()) {
        const runs = measured[index] as Measured[];
        rows.push({
          server: entry.server.name,
          scenario,
          requestsPerSec: median(runs.map((run) => run.rps)),
          p99Ms: median(runs.map((run) => run.p99)),
          cpuUsPerRequest: median(runs.map((run) => run.cpu)),
        });
      }
    }
    return {
      rows,
      observedOverBare: median(overBare),
      observedOverFastify: median(overFastify),
      cpuObservedOverBare: median(cpuOverBare),
    };
  } finally {
    for (const { child } of started) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

interface Measured {
  rps: number;
  p99: number;
  cpu: number;
}

function median(values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Requests per second with metrics and tracing on, over off, that the issue asks for. */
export const OBSERVED_TARGET = 0.85;

/** Says what the benchmark is doing, on stderr, so a long run shows its progress apart from its results. */
function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}

/** Prints the rows and ratios as `npm run bench` prints its tables. */
export function printObserve(result: ObserveBenchResult): void {
  console.log(
    '\nObservability: the example in memory, 50 connections, logging on; metrics + tracing (spans batched);',
    'medians of the rounds',
  );
  console.log(
    `${'scenario'.padEnd(28)}${'server'.padEnd(28)}${'req/s'.padStart(8)}${'p99 ms'.padStart(11)}${'CPU µs/req'.padStart(12)}`,
  );
  for (const row of result.rows) {
    console.log(
      `${row.scenario.padEnd(28)}${row.server.padEnd(28)}${row.requestsPerSec.toFixed(0).padStart(8)}${row.p99Ms.toFixed(1).padStart(11)}${row.cpuUsPerRequest.toFixed(0).padStart(12)}`,
    );
  }
  const met = result.observedOverBare >= OBSERVED_TARGET ? 'met' : 'NOT met';
  console.log(
    `with / without metrics + tracing: ${result.observedOverBare.toFixed(2)} (target ≥ ${OBSERVED_TARGET}: ${met})`,
  );
  console.log(`with metrics + tracing / bare Fastify: ${result.observedOverFastify.toFixed(2)}`);
  console.log(`CPU per request, with / without metrics + tracing: ${result.cpuObservedOverBare.toFixed(2)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printObserve(await benchObserve({ durationSec: Number(process.env.BENCH_SECONDS ?? 10) }));
}
