import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A private NATS server with JetStream that a test may stop and start again, its data kept in between. */
export interface NatsBroker {
  /** `nats://127.0.0.1:<port>`: the same across restarts. */
  url: string;
  /** Stops the server gracefully (SIGTERM, SIGKILL after 10 s); its JetStream data stays on disk. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once JetStream is ready. */
  start(): Promise<void>;
  /** Stops the server and deletes its data directory. */
  remove(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

/**
 * Starts a NATS server of its own for a test: a free loopback port, a temporary JetStream store (file storage), and a
 * monitoring port whose `/healthz` tells when JetStream has recovered its streams. The shared server on 4222 is never
 * touched.
 *
 * @remarks JetStream writes every message to its files before acknowledging it, but leaves fsync to its sync interval
 * (this server version cannot fsync each write), so data survives a killed server process, not a lost machine.
 * @example
 * const broker = await startNatsBroker();
 * await broker.stop();
 * await broker.start();
 * await broker.remove();
 */
export async function startNatsBroker(): Promise<NatsBroker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-nats-'));
  const port = await freePort();
  const monitor = await freePort();
  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    if (child) return;
    log = '';
    const proc = spawn(
      'nats-server',
      ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitor), '-js', '-sd', dir, '-n', `gantry-test-${port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    // A test process that dies without remove() must not leave a server behind.
    const orphan = (): void => {
      proc.kill('SIGKILL');
    };
    process.once('exit', orphan);
    const keep = (chunk: Buffer): void => {
      log = (log + chunk.toString()).slice(-8_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    let exited = false;
    proc.once('exit', () => {
      process.removeListener('exit', orphan);
      exited = true;
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`nats-server exited at start:\n${log}`);
      if (await healthy(monitor)) return;
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(`nats-server on port ${port} was not ready within ${READY_TIMEOUT_MS} ms:\n${log}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    child = undefined;
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    start,
    stop,
    remove: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** True when the server answers `/healthz` with 200: it accepts clients and JetStream is current. */
async function healthy(monitor: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitor}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** A port nothing listens on now, chosen by the kernel. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
