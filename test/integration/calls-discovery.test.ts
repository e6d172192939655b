import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { openRegistry } from 'gantry/calls';
import { describe, expect, it } from 'vitest';
import { freePort, gantryOnce, killHard, stopGently } from '../support/processes.ts';

const root = new URL('../..', import.meta.url).pathname;
const REGISTRIES = {
  redis: `redis://127.0.0.1:6379?prefix=test-${randomUUID().slice(0, 8)}:`,
  postgres: `postgres://postgres@127.0.0.1:5432/test?table=registry_${randomUUID().slice(0, 8).replace(/-/g, '')}`,
};

function startDirectory(port: number, registry: string) {
  const child = spawn(
    process.execPath,
    ['bin/gantry.js', '--host', 'test/fixtures/calls/host.ts', 'start', 'directory'],
    {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        GANTRY_ENV: 'dev',
        GANTRY_BUS: 'memory:',
        GANTRY_REGISTRY: registry,
        GANTRY_REGISTRY_HEARTBEAT_MS: '200',
        GANTRY_REGISTRY_TTL_MS: '1000',
        GANTRY_SERVICE_SECRET: 'discovery-test-secret-of-at-least-32-chars',
      },
      stdio: 'ignore',
    },
  );
  return { name: 'directory', child, output: () => '' };
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const [name, url] of Object.entries(REGISTRIES)) {
  describe(`discovery on ${name}`, () => {
    it('sees a new instance within 2 s, lists it in gantry services, drops it after SIGKILL within the TTL', async () => {
      const registry = await openRegistry(url);
      const port = await freePort();
      const proc = startDirectory(port, url);
      try {
        // Live first (process start-up is not what is measured), then how long until the registry shows it.
        await until('the directory to be live', 30_000, async () =>
          (await fetch(`http://127.0.0.1:${port}/health/live`).then(
            (r) => r.ok,
            () => false,
          ))
            ? true
            : undefined,
        );
        const liveAt = Date.now();
        const [record] = await until('the registry entry', 2_000, async () => {
          const found = await registry.list('directory');
          return found.length > 0 ? found : undefined;
        });
        expect(Date.now() - liveAt).toBeLessThan(2_000);
        expect(record).toMatchObject({ service: 'directory', version: '1.0.0', address: `http://127.0.0.1:${port}` });
        expect(record?.events).toContain('GET /customers/:id');
        expect(record?.events).toContain('rpc add');

        const listed = await gantryOnce(['services', 'directory'], { GANTRY_REGISTRY: url, GANTRY_ENV: 'dev' });
        expect(listed).toContain(`http://127.0.0.1:${port}`);

        await killHard(proc);
        const killedAt = Date.now();
        await until('the entry to expire', 3_000, async () =>
          (await registry.list('directory')).length === 0 ? true : undefined,
        );
        // The TTL is 1000 ms from the last heartbeat, at most 200 ms before the kill.
        expect(Date.now() - killedAt).toBeLessThan(1_500);
      } finally {
        await stopGently(proc);
        await registry.close();
      }
    });
  });
}
