import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { resolveBus } from '../../src/bus/resolve.ts';

/** A broker the scenario can stop and start (test/integration/brokers/*.ts). */
export interface RestartableBroker {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** What the scenario saw. */
export interface DurabilityReport {
  published: number;
  /** Distinct message numbers with an effect. */
  handled: number;
  /** Effect rows: more than `handled` would mean a side effect ran twice. */
  effects: number;
  /** Consumer processes that recorded effects (the kills make this more than one). */
  consumerPids: number;
  publishRetries: number;
  seconds: number;
}

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';

function startConsumer(env: Record<string, string>): Promise<ChildProcess> {
  const fixture = new URL('../fixtures/durable-consumer.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`consumer exited with ${code} before it was ready`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/**
 * Publishes `messages` messages while a consumer process (an inbox consumer writing one effect row per message to
 * PostgreSQL) is SIGKILLed twice and restarted, and the broker is restarted once; then waits until every message has
 * its effect. The caller checks the report: nothing lost (`handled` = `published`), no effect twice (`effects` =
 * `handled`).
 */
export async function runDurabilityScenario(options: {
  broker: RestartableBroker;
  /** Appended to the broker URL for the consumer (adapter options such as a short claim timeout). */
  urlOptions?: string;
  messages?: number;
  timeoutMs?: number;
}): Promise<DurabilityReport> {
  const messages = options.messages ?? 10_000;
  const started = Date.now();
  const id = randomUUID().slice(0, 8);
  const databaseName = `gantry_durable_${id}`;
  const stream = `durable.items${id}`;
  const table = `effects_${id}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`create database ${databaseName}`);
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${databaseName}`;
  const busUrl = `${options.broker.url}${options.urlOptions ?? ''}`;
  const env = { GANTRY_BUS: busUrl, DATABASE_URL: databaseUrl, DURABLE_STREAM: stream, DURABLE_TABLE: table };
  const db = new pg.Client({ connectionString: databaseUrl });
  let consumer: ChildProcess | undefined;
  const publisher = await resolveBus(busUrl, { instanceId: `publisher-${id}` });
  try {
    // The first consumer creates the group before anything is published, so the group sees every message.
    consumer = await startConsumer(env);
    await db.connect();
    let publishRetries = 0;
    const killAt = new Set([Math.floor(messages * 0.25), Math.floor(messages * 0.5)]);
    const restartBrokerAt = Math.floor(messages * 0.7);
    const inFlight: Promise<void>[] = [];
    for (let n = 0; n < messages; n++) {
      if (killAt.has(n)) {
        await Promise.all(inFlight.splice(0));
        await kill(consumer);
        consumer = await startConsumer(env);
      }
      if (n === restartBrokerAt) {
        await Promise.all(inFlight.splice(0));
        await options.broker.stop();
        await options.broker.start();
      }
      const envelope = createEnvelope({ stream, data: { n }, source: 'durability@1.0.0' });
      inFlight.push(
        (async () => {
          // A publish that fails while the broker is away is retried: the publisher must not lose it either.
          for (let attempt = 0; ; attempt++) {
            try {
              await publisher.publish(stream, envelope);
              return;
            } catch (error) {
              if (attempt > 200) throw error;
              publishRetries++;
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
          }
        })(),
      );
      if (inFlight.length >= 200) await Promise.all(inFlight.splice(0));
    }
    await Promise.all(inFlight.splice(0));
    const deadline = Date.now() + (options.timeoutMs ?? 240_000);
    let handled = 0;
    for (;;) {
      const { rows } = await db
        .query(`select count(distinct n)::int as handled from ${table}`)
        .catch(() => ({ rows: [{ handled: 0 }] }));
      handled = rows[0]?.handled ?? 0;
      if (handled >= messages || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Let late redeliveries (if any) land before counting effects.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const { rows } = await db.query(
      `select count(*)::int as effects, count(distinct n)::int as handled, count(distinct pid)::int as pids from ${table}`,
    );
    const summary = rows[0] as { effects: number; handled: number; pids: number };
    return {
      published: messages,
      handled: summary.handled,
      effects: summary.effects,
      consumerPids: summary.pids,
      publishRetries,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    if (consumer) await kill(consumer);
    await publisher.close().catch(() => undefined);
    await db.end().catch(() => undefined);
    await admin.query(`drop database if exists ${databaseName} with (force)`).catch(() => undefined);
    await admin.end();
  }
}

/** A fixture process started by {@link startFixture}, with the line it printed when ready. */
export interface FixtureProcess {
  child: ChildProcess;
  /** The first line containing `ready`, e.g. `ready http://127.0.0.1:41234`. */
  readyLine: string;
}

/**
 * Starts `node --import tsx test/fixtures/<name>.ts` with `env` added to the environment and resolves once it prints
 * a line containing `ready`; rejects when it exits first or stays silent for `timeoutMs`.
 */
export function startFixture(name: string, env: Record<string, string>, timeoutMs = 120_000): Promise<FixtureProcess> {
  const fixture = new URL(`../fixtures/${name}.ts`, import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((l) => l.includes('ready'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve({ child, readyLine: line.trim() });
      }
    });
  });
}

/** SIGKILLs a fixture process (no shutdown hooks, no flush) and waits until it is gone. */
export async function killFixture(fixture: FixtureProcess): Promise<void> {
  if (fixture.child.signalCode !== null) return;
  await kill(fixture.child);
}
