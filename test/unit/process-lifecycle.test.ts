import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function gantry(args: string[], env: Record<string, string>): Running {
  let output = '';
  const child = spawn(process.execPath, ['bin/gantry.js', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForLine(running: Running, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pattern.test(running.output())) {
    if (Date.now() > until) throw new Error(`no line matching ${pattern} in:\n${running.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a gantry process', () => {
  it('exits non-zero in prod listing every missing setting', async () => {
    const running = gantry(['start', 'strict', '--host', 'test/fixtures/slow-host.ts'], {
      GANTRY_ENV: 'prod',
      GANTRY_ALLOW_EMBEDDED: 'true',
      PORT: '0',
    });
    expect(await running.exited).toBe(1);
    const output = running.output();
    for (const key of [
      'services.strict.settings.apiKey',
      'services.strict.settings.region',
      'services.strict.settings.replicas',
    ]) {
      expect(output).toContain(key);
    }
    expect(output).toContain('env STRICT__API_KEY');
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('refuses embedded defaults in prod unless allowed', async () => {
    const running = gantry(['start', 'slow', '--host', 'test/fixtures/slow-host.ts'], {
      GANTRY_ENV: 'prod',
      PORT: '0',
    });
    expect(await running.exited).toBe(1);
    expect(running.output()).toContain('prod refuses embedded defaults');
  });

  it('on SIGTERM finishes in-flight requests, refuses new ones, turns readiness 503 and exits 0', async () => {
    const port = 18_000 + Math.floor(Math.random() * 2_000);
    const running = gantry(['start', 'slow', '--host', 'test/fixtures/slow-host.ts'], {
      GANTRY_ENV: 'test',
      PORT: String(port),
      GANTRY_SHUTDOWN_TIMEOUT_MS: '5000',
      GANTRY_STOP_GRACE_MS: '600',
    });
    await waitForLine(running, /listening/);
    expect((await get(port, '/health/ready')).status).toBe(200);
    const inFlight = [get(port, '/slow?ms=1500'), get(port, '/slow?ms=1200')];
    await new Promise((resolve) => setTimeout(resolve, 200));
    running.child.kill('SIGTERM');
    await waitForLine(running, /"stopping"/);
    // Within the grace period readiness says 503 and new work is refused with 503.
    const afterSignal = await get(port, '/health/ready');
    expect(afterSignal.status).toBe(503);
    expect(JSON.parse(afterSignal.body)).toMatchObject({ ready: false, state: 'stopping' });
    const late = await get(port, '/slow?ms=1');
    expect(late.status).toBe(503);
    expect(JSON.parse(late.body)).toMatchObject({ code: 'GANTRY_ERR_HTTP_UNAVAILABLE' });
    // After it the listener is closed: new connections are refused outright.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await expect(get(port, '/slow?ms=1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const finished = await Promise.all(inFlight);
    expect(finished.map((r) => r.status)).toEqual([200, 200]);
    expect(JSON.parse(finished[0]?.body ?? '{}')).toEqual({ slept: 1500 });
    expect(await running.exited).toBe(0);
    expect(running.output()).toMatch(/"clean":true/);
  });

  it('exits 1 when in-flight work outlives the shutdown deadline', async () => {
    const port = 20_000 + Math.floor(Math.random() * 2_000);
    const running = gantry(['start', 'slow', '--host', 'test/fixtures/slow-host.ts'], {
      GANTRY_ENV: 'test',
      PORT: String(port),
      GANTRY_SHUTDOWN_TIMEOUT_MS: '300',
    });
    await waitForLine(running, /listening/);
    const stuck = get(port, '/slow?ms=5000').catch(() => ({ status: 0, body: '' }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(1);
    expect(running.output()).toContain('shutdown deadline reached');
    await stuck;
  });
});
