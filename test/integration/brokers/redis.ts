import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A private Redis server for tests that stop and restart the broker. */
export interface RedisBroker {
  /** `redis://127.0.0.1:<port>`, without options. */
  url: string;
  /** Stops the server (SIGTERM: Redis finishes its AOF and exits); the data stays for {@link RedisBroker.start}. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it answers PING (AOF loaded). */
  start(): Promise<void>;
  /** Stops it if running and deletes its data directory. */
  remove(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Starts a Redis server of its own for one test file: a free loopback port, a temporary data directory, and an AOF
 * written with `appendfsync always`, so every write acknowledged to a client survives a stop or a crash of the
 * server. Never touches the shared server on 6379.
 *
 * @example
 * const broker = await startRedisBroker();
 * try { ... await broker.stop(); ... await broker.start(); ... } finally { await broker.remove(); }
 */
export async function startRedisBroker(): Promise<RedisBroker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';
  // A test runner that dies must not leave the server behind.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };

  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    const started = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--daemonize',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = started;
    process.once('exit', killOnExit);
    const keep = (chunk: Buffer): void => {
      // The last few kilobytes are enough to say why a start failed.
      output = (output + chunk.toString()).slice(-4_000);
    };
    started.stdout?.on('data', keep);
    started.stderr?.on('data', keep);
    started.once('exit', () => {
      if (child === started) child = undefined;
      process.removeListener('exit', killOnExit);
    });
    const until = Date.now() + READY_TIMEOUT_MS;
    while (!(await answersPing(port))) {
      if (child !== started) throw new Error(`redis-server on port ${port} exited at start:\n${output}`);
      if (Date.now() > until)
        throw new Error(`redis-server on port ${port} not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  const stop = async (): Promise<void> => {
    const running = child;
    if (!running) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    remove: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A port free on the loopback now (the OS picks it); the server binds it right after. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a server on the port answers PING with PONG (not LOADING while it replays its AOF). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
