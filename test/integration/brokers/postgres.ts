import { execFile, execFileSync } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A private PostgreSQL server for tests that stop and restart the database. */
export interface PostgresBroker {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, without options (trust authentication). */
  url: string;
  /** Stops the server (`pg_ctl stop -m fast`: clients are disconnected, the WAL is flushed); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it if running and deletes its data directory. */
  remove(): Promise<void>;
}

const BIN = '/usr/lib/postgresql/15/bin';
const START_TIMEOUT_S = 30;

/**
 * Starts a PostgreSQL 15 cluster of its own for one test file: `initdb` into a temporary directory, then `pg_ctl` on a
 * free loopback port, both as the `postgres` user (the server refuses to run as root), with trust authentication and
 * the default durability (fsync and synchronous commit on), so every commit acknowledged to a client survives a stop
 * or a crash. Never touches the shared server on 5432.
 *
 * @example
 * const broker = await startPostgresBroker();
 * try { ... await broker.stop(); ... await broker.start(); ... } finally { await broker.remove(); }
 */
export async function startPostgresBroker(): Promise<PostgresBroker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const port = await freePort();
  const { uid, gid } = postgresUser();
  await chown(dir, uid, gid);
  // --no-sync only skips initdb's own fsync of the template files; the server itself runs fully durable.
  await asPostgres(`${BIN}/initdb`, [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);

  let running = false;
  // A test runner that dies must not leave the server behind.
  const killOnExit = (): void => {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, 'stop', '-D', data, '-m', 'immediate', '-w'], {
        stdio: 'ignore',
      });
    } catch {
      // Already stopped.
    }
  };

  const start = async (): Promise<void> => {
    if (running) return;
    const settings = [
      `-p ${port}`,
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c max_connections=100',
      '-c shared_buffers=64MB',
      '-c fsync=on',
      '-c synchronous_commit=on',
    ].join(' ');
    try {
      await asPostgres(`${BIN}/pg_ctl`, [
        'start',
        '-D',
        data,
        '-l',
        log,
        '-w',
        '-t',
        String(START_TIMEOUT_S),
        '-o',
        settings,
      ]);
    } catch (error) {
      const tail = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`PostgreSQL on port ${port} did not start: ${(error as Error).message}\n${tail.slice(-4_000)}`);
    }
    running = true;
    process.once('exit', killOnExit);
  };

  const stop = async (): Promise<void> => {
    if (!running) return;
    await asPostgres(`${BIN}/pg_ctl`, ['stop', '-D', data, '-m', 'fast', '-w', '-t', String(START_TIMEOUT_S)]);
    running = false;
    process.removeListener('exit', killOnExit);
  };

  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    remove: async () => {
      await stop().catch(() => killOnExit());
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function asPostgres(command: string, args: string[]): Promise<void> {
  // cwd: the server user cannot read the caller's directory, and some tools complain about it.
  await run('runuser', ['-u', 'postgres', '--', command, ...args], {
    cwd: '/',
    timeout: (START_TIMEOUT_S + 10) * 1_000,
  });
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
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
