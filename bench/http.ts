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
    execArgv: ['--import', 'tsx'],
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
 * the same run, each server alone in its own process.
 */
export async function benchHttp(options: { durationSec: number }): Promise<HttpBenchRow[]> {
  const rows: HttpBenchRow[] = [];
  let port = 39_100;
  for (const [name, file] of Object.entries(servers)) {
    port++;
    const child = await startServer(file, port);
    const base = `http://127.0.0.1:${port}`;
    try {
      for (const prefix of ['/mem', '']) {
        const label = prefix === '' ? 'PGlite' : 'in memory';
        let n = 0;
        const post: autocannon.Request = {
          method: 'POST',
          path: `${prefix}/customers`,
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({ name: `Bench ${n}`, email: `bench-${n++}@example.com` }),
          }),
        };
        const seeded = await fetch(`${base}${prefix}/customers`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'Seed', email: 'seed@example.com' }),
        });
        const { id } = (await seeded.json()) as { id: string };
        const get: autocannon.Request = { method: 'GET', path: `${prefix}/customers/${id}` };
        await load(base, 2, [get]);
        const got = await load(base, options.durationSec, [get]);
        rows.push({ server: name, scenario: `GET one (${label})`, requestsPerSec: got.rps, p99Ms: got.p99 });
        const posted = await load(base, options.durationSec, [post]);
        rows.push({
          server: name,
          scenario: `POST validated (${label})`,
          requestsPerSec: posted.rps,
          p99Ms: posted.p99,
        });
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  return rows;
}
