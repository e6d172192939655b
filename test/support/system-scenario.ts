import { randomUUID } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { RestartableBroker } from './durability.ts';
import { freePort, type GantryProcess, gantryOnce, killHard, startGantry, stopGently } from './processes.ts';
import { startSmtpSink } from './smtp-sink.ts';
import { runCustomersWorkload, type WorkloadStats } from './workload.ts';

/** What the distributed scenario found at its end. */
export interface SystemReport {
  workload: WorkloadStats;
  sourceRows: number;
  /** Rows where the replica differs from the source (missing, other version, fields or deleted state). */
  replicaDifferences: number;
  expectedNotifications: number;
  /** Notification ids the SMTP server received more than once. */
  duplicateMails: number;
  /** Notification ids it never received. */
  missingMails: number;
  seconds: number;
}

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const MYSQL = 'mysql://root@127.0.0.1:3306/test';

/**
 * The production-like topology: each service in its own processes (two notifiers, two replicators) on PostgreSQL,
 * MariaDB, a real SMTP server and the given broker. While 20 clients create, update and delete customers, one
 * replicator and one notifier are SIGKILLed and restarted, and the broker is restarted once.
 */
export async function runDistributedSystem(options: {
  broker: RestartableBroker;
  busOptions?: string;
  customers?: number;
}): Promise<SystemReport> {
  const started = Date.now();
  const id = randomUUID().slice(0, 8);
  const databaseName = `gantry_system_${id}`;
  const table = `replica_${id}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`create database ${databaseName}`);
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${databaseName}`;
  const sink = await startSmtpSink();
  const processes: GantryProcess[] = [];
  const customersPort = await freePort();
  const env = {
    GANTRY_ENV: 'qa',
    GANTRY_BUS: `${options.broker.url}${options.busOptions ?? ''}`,
    DATABASE_URL: databaseUrl,
    SMTP_URL: sink.url,
    REPLICATOR__DRIVERS__REPLICA__URL: MYSQL,
    REPLICATOR__DRIVERS__REPLICA__TABLE: table,
    REPLICATOR__SOURCE_URL: `http://127.0.0.1:${customersPort}`,
    GANTRY_DOCS: 'false',
    // The expected notifications are read from the customers' outbox, so it keeps what it sent.
    GANTRY_OUTBOX_KEEP_SENT: 'true',
  };
  const start = async (name: string, service: string): Promise<GantryProcess> => {
    const proc = await startGantry(name, [service], {
      ...env,
      PORT: String(name === 'customers' ? customersPort : await freePort()),
    });
    processes.push(proc);
    return proc;
  };
  const source = new pg.Client({ connectionString: databaseUrl });
  const replica = await createConnection({ uri: MYSQL });
  try {
    // Outside dev and test, migrating is a deploy step of its own.
    await gantryOnce(['db', 'migrate'], env);
    await source.connect();
    await start('customers', 'customers');
    const [notifierA] = [await start('notifier-a', 'notifier'), await start('notifier-b', 'notifier')];
    const [replicatorA] = [await start('replicator-a', 'replicator'), await start('replicator-b', 'replicator')];
    const total = options.customers ?? 1_000;
    const events: Promise<void>[] = [];
    const at = new Map<number, () => Promise<void>>([
      [
        Math.floor(total * 0.3),
        async () => {
          await killHard(replicatorA as GantryProcess);
          await start('replicator-a2', 'replicator');
        },
      ],
      [
        Math.floor(total * 0.5),
        async () => {
          await killHard(notifierA as GantryProcess);
          await start('notifier-a2', 'notifier');
        },
      ],
      [
        Math.floor(total * 0.7),
        async () => {
          await options.broker.stop();
          await options.broker.start();
        },
      ],
    ]);
    const workload = await runCustomersWorkload(() => `http://127.0.0.1:${customersPort}`, {
      customers: total,
      clients: 20,
      tag: id,
      between: async (done) => {
        const event = at.get(done);
        if (event) {
          at.delete(done);
          events.push(event());
        }
      },
    });
    await Promise.all(events);

    const compare = async (): Promise<{ rows: number; differences: number }> => {
      const { rows: sourceRows } = await source.query<{
        id: string;
        name: string;
        email: string;
        version: number;
        deleted: boolean;
      }>('select id, name, email, version, deleted_at is not null as deleted from customers');
      const [replicaRows] = await replica
        .query(`select id, name, email, version, deleted_at is not null as deleted from \`${table}\``)
        .catch(() => [[]]);
      const byId = new Map(
        (replicaRows as { id: string; name: string; email: string; version: number; deleted: number }[]).map((r) => [
          r.id,
          r,
        ]),
      );
      let differences = 0;
      for (const row of sourceRows) {
        const copy = byId.get(row.id);
        if (
          !copy ||
          copy.version !== row.version ||
          copy.name !== row.name ||
          copy.email !== row.email ||
          Boolean(copy.deleted) !== row.deleted
        )
          differences++;
      }
      return { rows: sourceRows.length, differences: differences + Math.max(0, byId.size - sourceRows.length) };
    };
    const expectedIds = async (): Promise<string[]> => {
      const { rows } = await source.query<{ id: string }>(
        `select envelope->'data'->>'notificationId' as id from gantry_customers.outbox where stream = 'notifications.requested'`,
      );
      return rows.map((r) => r.id);
    };
    const deadline = Date.now() + 240_000;
    let state = await compare();
    let expected = await expectedIds();
    const received = () => {
      const counts = new Map<string, number>();
      for (const mail of sink.mails) {
        const notification = /<([0-9a-f-]{36})@/.exec(mail.messageId)?.[1] ?? mail.messageId;
        counts.set(notification, (counts.get(notification) ?? 0) + 1);
      }
      return counts;
    };
    while (Date.now() < deadline && (state.differences > 0 || received().size < expected.length)) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      state = await compare();
      expected = await expectedIds();
    }
    // Late duplicates, if any, would arrive now.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const counts = received();
    return {
      workload,
      sourceRows: state.rows,
      replicaDifferences: (await compare()).differences,
      expectedNotifications: expected.length,
      duplicateMails: [...counts.values()].filter((n) => n > 1).length,
      missingMails: expected.filter((n) => !counts.has(n)).length,
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await Promise.all(processes.map((p) => stopGently(p)));
    await sink.stop();
    await source.end().catch(() => undefined);
    await replica.query(`drop table if exists \`${table}\``).catch(() => undefined);
    await replica.end();
    await admin.query(`drop database if exists ${databaseName} with (force)`).catch(() => undefined);
    await admin.end();
  }
}
