import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { eq, sql } from 'drizzle-orm';
import { integer, pgSchema, serial, text } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, type DatabaseOptions, database } from '../../src/db/database.ts';
import { generateMigration } from '../../src/db/migrations.ts';
import { migrationsTableFor } from '../../src/db/migrator.ts';
import type { DriverHandle, DriverOpenContext } from '../../src/drivers/driver.ts';
import { GantryError } from '../../src/errors/gantry-error.ts';
import { createLogger } from '../../src/log/logger.ts';

const url = process.env.GANTRY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// Unique per run, so parallel runs (and leftovers of a crashed one) never meet.
const run = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const flowTables = `it_db_flow_${run}`;
const raceTables = `it_db_race_${run}`;
const flowService = `it-db-flow-${run}`;
const raceService = `it-db-race-${run}`;

/** Two versions of a small schema, the second adding a column, in a PostgreSQL schema of their own. */
function itemsSchemas(name: string) {
  const app = pgSchema(name);
  const itemsV1 = app.table('items', { id: serial('id').primaryKey(), name: text('name').notNull() });
  const itemsV2 = app.table('items', {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    qty: integer('qty'),
  });
  return { v1: { app, items: itemsV1 }, v2: { app, items: itemsV2 } };
}

const log = createLogger({ env: 'test', level: 'silent' });
const SLOW = 60_000;

let root: string;
let admin: pg.Pool;
const handles: DriverHandle<unknown>[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'gantry-db-pg-'));
  admin = new pg.Pool({ connectionString: url, max: 1 });
  // Fails the whole file, rather than skipping it, when no server answers.
  await admin.query('select 1');
});

afterAll(async () => {
  await Promise.allSettled(handles.map((handle) => handle.close()));
  const created = [
    flowTables,
    raceTables,
    migrationsTableFor(flowService).schema,
    migrationsTableFor(raceService).schema,
  ];
  for (const schema of created) {
    await admin.query(`drop schema if exists "${schema}" cascade`);
  }
  await admin.end();
  await rm(root, { recursive: true, force: true });
});

function context(service: string, config: Record<string, unknown> = {}): DriverOpenContext {
  return { service, alias: 'db', env: 'test', config: { url, poolSize: 3, ...config }, dataDir: null, log };
}

async function open<TSchema extends Record<string, unknown>>(
  options: DatabaseOptions<TSchema>,
  service: string,
  config: Record<string, unknown> = {},
): Promise<DriverHandle<Database<TSchema>>> {
  const handle = await database(options).open(context(service, config));
  handles.push(handle);
  return handle;
}

describe('database on PostgreSQL', () => {
  it(
    'refuses to start behind its migrations, then lists, applies and extends them',
    async () => {
      const dir = path.join(root, 'flow');
      const { v1: schemaV1, v2: schemaV2 } = itemsSchemas(flowTables);
      const itemsV2 = schemaV2.items;
      await generateMigration({ schema: schemaV1, dir, name: 'create items' });

      // On a server the default is to refuse: migrating is a deploy step, not a side effect of starting.
      const refused = await database({ schema: schemaV1, migrations: dir })
        .open(context(flowService))
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toBeInstanceOf(GantryError);
      expect((refused as GantryError).code).toBe('GANTRY_ERR_DB_PENDING_MIGRATIONS');

      const handle = await open({ schema: schemaV2, migrations: dir }, flowService, { onPending: 'ignore' });
      const client = handle.client;
      expect(handle.embedded).toBe(false);
      expect(client.kind).toBe('postgres');
      await expect(handle.check()).resolves.toBeUndefined();

      const pending = await client.pending();
      expect(pending.map((migration) => migration.name)).toEqual(['0000_create_items']);
      expect(pending[0]?.sql.join('\n')).toContain(`CREATE TABLE "${flowTables}"."items"`);
      expect(await client.migrate()).toEqual(['0000_create_items']);
      expect(await client.pending()).toEqual([]);

      const added = await generateMigration({ schema: schemaV2, dir, name: 'add qty' });
      expect(added?.sql).toEqual([`ALTER TABLE "${flowTables}"."items" ADD COLUMN "qty" integer;`]);
      expect(await client.pending()).toEqual([{ name: '0001_add_qty', sql: added?.sql }]);
      expect(await client.migrate()).toEqual(['0001_add_qty']);
      expect(await client.pending()).toEqual([]);

      await client.db.insert(itemsV2).values([{ name: 'nut', qty: 12 }, { name: 'bolt' }]);
      const nut = await client.db.select().from(itemsV2).where(eq(itemsV2.name, 'nut'));
      expect(nut).toEqual([{ id: 1, name: 'nut', qty: 12 }]);
      const counted = await client.db.transaction(async (tx) => {
        await tx.update(itemsV2).set({ qty: 1 }).where(eq(itemsV2.name, 'bolt'));
        return tx.execute<{ total: number }>(sql`select sum(qty)::int as total from ${itemsV2}`);
      });
      expect(counted.rows).toEqual([{ total: 13 }]);

      const location = migrationsTableFor(flowService);
      const recorded = await admin.query(
        `select name, hash, created_at from "${location.schema}"."${location.table}" order by id`,
      );
      expect(recorded.rows.map((row) => row.name)).toEqual(['0000_create_items', '0001_add_qty']);

      // A second start finds nothing pending, so the default policy lets it open.
      const restarted = await open({ schema: schemaV2, migrations: dir }, flowService);
      expect(await restarted.client.pending()).toEqual([]);

      await handle.close();
      await expect(handle.check()).rejects.toThrow();
    },
    SLOW,
  );

  it(
    'applies migrations once when several processes migrate at the same moment',
    async () => {
      const dir = path.join(root, 'race');
      const { v1: schemaV1, v2: schemaV2 } = itemsSchemas(raceTables);
      const first = await generateMigration({ schema: schemaV1, dir, name: 'create items' });
      // Holding the first migration open for a moment makes the others arrive while it runs, every time.
      await appendFile(first?.file ?? '', '--> statement-breakpoint\nselect pg_sleep(0.3);');
      await generateMigration({ schema: schemaV2, dir, name: 'add qty' });
      const racers = await Promise.all(
        [1, 2, 3].map(() => open({ schema: schemaV2, migrations: dir }, raceService, { onPending: 'ignore' })),
      );
      const results = await Promise.all(racers.map((racer) => racer.client.migrate()));

      const winners = results.filter((names) => names.length > 0);
      expect(winners).toEqual([['0000_create_items', '0001_add_qty']]);
      expect(results.filter((names) => names.length === 0)).toHaveLength(2);
      const location = migrationsTableFor(raceService);
      const recorded = await admin.query(`select name from "${location.schema}"."${location.table}" order by id`);
      expect(recorded.rows.map((row) => row.name)).toEqual(['0000_create_items', '0001_add_qty']);
      for (const racer of racers) expect(await racer.client.pending()).toEqual([]);
    },
    SLOW,
  );

  it('logs an idle connection the server dropped as one warning with its code, without the client hung on it', async () => {
    const lines: Record<string, unknown>[] = [];
    const capture = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text));
        done();
      },
    });
    const warned = createLogger({ env: 'test', level: 'warn', destination: capture });
    const migrations = path.join(root, 'idle');
    await mkdir(migrations, { recursive: true });
    const handle = await database({ schema: {}, migrations }).open({ ...context(`it-db-idle-${run}`), log: warned });
    handles.push(handle);
    const { rows } = await handle.client.db.execute<{ pid: number }>(sql`select pg_backend_pid() as pid`);
    const pid = rows[0]?.pid;
    // The connection is idle in the pool again: the server ends it, as a restart or failover would.
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await expect.poll(() => lines.length, { timeout: 10_000 }).toBeGreaterThan(0);
    const [line] = lines;
    expect(line).toMatchObject({ msg: 'idle PostgreSQL connection failed', err: { code: '57P01' } });
    expect((line?.err as Record<string, unknown> | undefined)?.client).toBeUndefined();
    expect(line?.err).toBeDefined();
    // The pool replaced the connection: the next query works.
    expect((await handle.client.db.execute(sql`select 1 as one`)).rows).toEqual([{ one: 1 }]);
  });
});
