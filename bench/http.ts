import { type ChildProcess, fork } from 'node:child_process';
import autocannon from 'autocannon';

/** One measured HTTP scenario. */
export interface HttpBenchRow {
  server: string;
  scenario: string;
  requestsPerSec: number;
  p99Ms: number;
}

const servers = {
  'bare Fastify': new URL('./servers/fastify-server.ts', import.meta.url).pathname,
  Gantry: new URL('./servers/gantry-server.ts', import.meta.url).pathname,
};

async function startServer(file: string, port: number): Promise<ChildProcess> {
  // Each server runs alone in its own process with its logs going nowhere, as they would to a log shipper's pipe.
  const child = fork(file, [], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info' },
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

async function load(
  url: string,
  durationSec: number,
  requests: autocannon.Request[],
): Promise<{ rps: number; p99: number }> {
  const result = await autocannon({ url, connections: 50, duration: durationSec, requests });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { rps: result.requests.average, p99: result.latency.p99 };
}

/**
 * The example's GET and POST against a bare Fastify server with the same schemas, data access and database, in
 * the same run, each server alone in its own process. Both servers run side by side and are measured in turn,
 * `rounds` times per scenario in a rotating order, and each row holds the medians of its rounds: on a machine shared
 * with other work, a change in load during the run then weighs on both sides alike instead of on whichever server
 * happened to be measured at that moment.
 */
export async function benchHttp(options: { durationSec: number; rounds?: number }): Promise<HttpBenchRow[]> {
  const rounds = options.rounds ?? 3;
  const slice = Math.max(1, Math.round(options.durationSec / rounds));
  const started: { name: string; child: ChildProcess; base: string; ids: Map<string, string> }[] = [];
  let port = 39_100;
  try {
    for (const [name, file] of Object.entries(servers)) {
      port++;
      const child = await startServer(file, port);
      const base = `http://127.0.0.1:${port}`;
      const ids = new Map<string, string>();
      started.push({ name, child, base, ids });
      for (const prefix of ['/mem', '']) {
        const seeded = await fetch(`${base}${prefix}/customers`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'Seed', email: 'seed@example.com' }),
        });
        const { id } = (await seeded.json()) as { id: string };
        ids.set(prefix, id);
        // A short warm-up, so the JIT has seen the routes before anything is measured.
        await load(base, 2, [{ method: 'GET', path: `${prefix}/customers/${id}` }]);
      }
    }
    let n = 0;
    const scenarios: { name: string; request: (prefix: string, id: string) => autocannon.Request }[] = [
      { name: 'GET one', request: (prefix, id) => ({ method: 'GET', path: `${prefix}/customers/${id}` }) },
      {
        name: 'POST validated',
        request: (prefix) => ({
          method: 'POST',
          path: `${prefix}/customers`,
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({ name: `Bench ${n}`, email: `bench-${n++}@example.com` }),
          }),
        }),
      },
    ];
    const rows: HttpBenchRow[] = [];
    for (const prefix of ['/mem', '']) {
      const label = prefix === '' ? 'PGlite' : 'in memory';
      for (const scenario of scenarios) {
        const measured = started.map(() => [] as { rps: number; p99: number }[]);
        for (let round = 0; round < rounds; round++) {
          for (let turn = 0; turn < started.length; turn++) {
            const index = (round + turn) % started.length;
            const entry = started[index] as (typeof started)[number];
            const request = scenario.request(prefix, entry.ids.get(prefix) as string);
            measured[index]?.push(await load(entry.base, slice, [request]));
          }
        }
        for (const [index, entry] of started.entries()) {
          const runs = measured[index] ?? [];
          rows.push({
            server: entry.name,
            scenario: `${scenario.name} (${label})`,
            requestsPerSec: median(runs.map((run) => run.rps)),
            p99Ms: median(runs.map((run) => run.p99)),
          });
        }
      }
    }
    return rows;
  } finally {
    for (const { child } of started) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
