import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type GantryProcess, killHard, stopGently } from '../support/processes.ts';

const root = new URL('../..', import.meta.url).pathname;
const SECRET = 'calls-http-test-secret-of-at-least-32-chars';

/** Starts one service of the calls fixture host in a process of its own and waits until it is live. */
async function start(service: string, port: number, env: Record<string, string> = {}): Promise<GantryProcess> {
  let output = '';
  const child = spawn(process.execPath, ['bin/gantry.js', '--host', 'test/fixtures/calls/host.ts', 'start', service], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      GANTRY_ENV: 'dev',
      GANTRY_BUS: 'memory:',
      GANTRY_SERVICE_SECRET: SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${service} exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`${service} was not live in time:\n${output}`);
    if (
      await fetch(`http://127.0.0.1:${port}/health/live`).then(
        (r) => r.ok,
        () => false,
      )
    ) {
      return { name: service, child, output: () => output };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function get(port: number, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('typed HTTP calls between two processes', () => {
  let directoryPort: number;
  let frontPort: number;
  let directory: GantryProcess;
  let front: GantryProcess;
  let budgetPort: number;
  let budgeted: GantryProcess;

  beforeAll(async () => {
    directoryPort = await freePort();
    frontPort = await freePort();
    directory = await start('directory', directoryPort);
    budgetPort = await freePort();
    const client = {
      url: `http://127.0.0.1:${directoryPort}`,
      maxAttempts: 3,
      initialDelayMs: 5,
      retryBudgetRatio: 0.2,
      retryBudgetMinPerSecond: 0,
      breakerConsecutiveFailures: 3,
      breakerMinimumRps: 1_000_000,
      breakerHalfOpenAfterMs: 1_000,
    };
    front = await start('front', frontPort, { GANTRY_CALLS_CLIENTS: JSON.stringify({ directory: client }) });
    // The same client with a breaker that never opens, so that every call reaches the failing route.
    budgeted = await start('front', budgetPort, {
      GANTRY_CALLS_CLIENTS: JSON.stringify({ directory: { ...client, breakerConsecutiveFailures: 1_000_000 } }),
    });
  });

  afterAll(async () => {
    await Promise.all([
      front && stopGently(front),
      budgeted && stopGently(budgeted),
      directory && stopGently(directory),
    ]);
  });

  it('answers a typed call, a declared 404 as a typed result, and carries the service credential', async () => {
    expect((await get(frontPort, '/proxy/ada')).body).toMatchObject({
      status: 200,
      body: { id: 'ada', name: 'Ada', email: 'ada@example.com' },
    });
    expect((await get(frontPort, '/proxy/bob')).body).toMatchObject({ status: 404, body: { missing: 'bob' } });
    expect((await get(frontPort, '/who')).body).toMatchObject({ status: 200, body: { caller: 'front' } });
    // Without the token the directory refuses the same route.
    expect((await get(directoryPort, '/whoami')).status).toBe(401);
  });

  it('never waits past the caller deadline', async () => {
    const started = performance.now();
    const answer = await get(frontPort, '/slow?ms=3000', { 'x-gantry-deadline': '200' });
    const elapsed = performance.now() - started;
    expect(answer.status).toBe(504);
    expect(elapsed).toBeLessThan(600);
    // The call inside kept running after the event's answer; it gave up at the deadline too.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const last = (await get(frontPort, '/last-slow')).body as { code?: string; callMs?: number; limitMs?: number };
    expect(last.code).toBe('GANTRY_ERR_CALL_TIMEOUT');
    // The call was given what was left of the 200 ms, and gave up then (timers may fire a little late on a busy
    // machine: the slack bounds that lateness, not the limit).
    expect(last.limitMs).toBeLessThanOrEqual(200);
    expect(last.callMs).toBeLessThanOrEqual(300);
  });

  it('keeps retries within the budget', async () => {
    const before = ((await get(directoryPort, '/counts')).body as { flaky: number }).flaky;
    const calls = 50;
    for (let i = 0; i < calls; i++) {
      const report = (await get(budgetPort, '/flaky')).body;
      expect(report.code).toBe('GANTRY_ERR_CALL_UPSTREAM');
    }
    const received = ((await get(directoryPort, '/counts')).body as { flaky: number }).flaky - before;
    // Three attempts per call would be 150; the budget allows one retry per five calls.
    expect(received).toBeGreaterThan(calls);
    expect(received).toBeLessThanOrEqual(calls * 1.2);
  });

  it('opens the breaker when the downstream dies, fails fast, and closes after it is back', async () => {
    expect((await get(frontPort, '/proxy/ada')).body).toMatchObject({ status: 200 });
    await killHard(directory);
    // Each failed attempt counts (retries included): the breaker opens within three calls, before the fourth.
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push(String((await get(frontPort, '/proxy/ada')).body.code));
    const opened = codes.indexOf('GANTRY_ERR_CALL_CIRCUIT_OPEN');
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThanOrEqual(3);
    expect(codes.slice(0, opened).every((code) => code === 'GANTRY_ERR_CALL_UNREACHABLE')).toBe(true);
    const fast: number[] = [];
    for (let i = 0; i < 20; i++) {
      const report = (await get(frontPort, '/proxy/ada')).body as { code?: string; callMs: number };
      expect(report.code).toBe('GANTRY_ERR_CALL_CIRCUIT_OPEN');
      fast.push(report.callMs);
    }
    expect(Math.max(...fast)).toBeLessThan(1);
    const ready = (await get(frontPort, '/health/ready')).body as { checks: Record<string, { detail?: string }> };
    expect(ready.checks.calls?.detail).toContain('directory: open');

    directory = await start('directory', directoryPort);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await get(frontPort, '/proxy/ada')).body).toMatchObject({ status: 200 });
    const after = (await get(frontPort, '/health/ready')).body as { checks: Record<string, { detail?: string }> };
    expect(after.checks.calls?.detail).toBe('breakers closed');
  });
});
