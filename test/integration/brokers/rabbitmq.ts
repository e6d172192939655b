import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'amqplib';

/** A private RabbitMQ node for tests that stop and restart the broker. */
export interface RabbitMqBroker {
  /** `amqp://guest:guest@127.0.0.1:<port>`, without options. */
  url: string;
  /** Stops the node gracefully (SIGTERM); its queues and persistent messages stay for {@link RabbitMqBroker.start}. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts an AMQP connection. */
  start(): Promise<void>;
  /** Stops it if running and deletes its data directory. */
  remove(): Promise<void>;
}

/** The server script itself, not the /usr/sbin wrapper, which would switch to the rabbitmq user and its shared data. */
const SERVER = process.env.GANTRY_TEST_RABBITMQ_SERVER ?? '/usr/lib/rabbitmq/bin/rabbitmq-server';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Starts a RabbitMQ node of its own for one test file: its own node name, AMQP and distribution ports on the
 * loopback, and a temporary directory for its database, logs, configuration and Erlang cookie, so it never meets the
 * shared node on 5672. Quorum queues fsync what they confirm, so a stop (or a crash) keeps every confirmed message.
 *
 * Measured on a 2-core machine with RabbitMQ 3.10 and Erlang 25, under load from other work: the first start takes
 * 8–10 s (it creates the database), a restart 5–8 s, a graceful stop 1–3 s. Nearly all of it is the Erlang VM and
 * RabbitMQ's boot (loading code, finding boot steps), not data, so a test should start the node once and reuse it.
 *
 * @example
 * const broker = await startRabbitMqBroker();
 * try { ... await broker.stop(); ... await broker.start(); ... } finally { await broker.remove(); }
 */
export async function startRabbitMqBroker(): Promise<RabbitMqBroker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-rabbitmq-'));
  const port = await freePort();
  let distPort = await freePort();
  while (distPort === port) distPort = await freePort();
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  await mkdir(path.join(dir, 'home'));
  await writeFile(
    path.join(dir, 'rabbitmq.conf'),
    [`listeners.tcp.1 = 127.0.0.1:${port}`, 'log.console = false', 'log.file.level = info', ''].join('\n'),
  );
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  // An empty environment file stands in for /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
  await writeFile(path.join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The Erlang cookie goes to $HOME/.erlang.cookie.
    HOME: path.join(dir, 'home'),
    RABBITMQ_NODENAME: `gantry-it-${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  let child: ChildProcess | undefined;
  let output = '';
  // A test runner that dies must not leave the node behind: the script and the Erlang VM share a process group.
  const killOnExit = (): void => {
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  };

  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    const started = spawn(SERVER, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = started;
    process.once('exit', killOnExit);
    const keep = (chunk: Buffer): void => {
      // The last few kilobytes are enough to say why a start failed.
      output = (output + chunk.toString()).slice(-4_000);
    };
    started.stdout?.on('data', keep);
    started.stderr?.on('data', keep);
    started.once('error', (error) => keep(Buffer.from(String(error))));
    started.once('exit', () => {
      if (child === started) child = undefined;
      process.removeListener('exit', killOnExit);
    });
    const until = Date.now() + READY_TIMEOUT_MS;
    while (!(await acceptsAmqp(url))) {
      if (child !== started) throw new Error(`rabbitmq-server on port ${port} exited at start:\n${output}`);
      if (Date.now() > until) {
        killOnExit();
        throw new Error(`rabbitmq-server on port ${port} not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const stop = async (): Promise<void> => {
    const running = child;
    if (!running) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    // The script traps SIGTERM and stops the node cleanly.
    running.kill('SIGTERM');
    const timer = setTimeout(killOnExit, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url,
    start,
    stop,
    remove: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A port free on the loopback now (the OS picks it); the node binds it right after. */
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

/** True when the node completes an AMQP handshake (it opens its listener only once its queues are recovered). */
async function acceptsAmqp(url: string): Promise<boolean> {
  try {
    const connection = await connect(url, { timeout: 1_000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}
