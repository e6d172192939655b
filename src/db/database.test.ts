import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { eq, sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { integer, type PgDatabase, type PgQueryResultHKT, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate as drizzleMigrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { DriverHandle, DriverOpenContext } from '../drivers/driver.ts';
import { GantryError } from '../errors/gantry-error.ts';
import { createLogger } from '../log/logger.ts';
import type { DrizzleDatabase } from './connection.ts';
import { type Database, type DatabaseOptions, database, resolveDatabaseTarget } from './database.ts';
import { loadClient } from './load-client.ts';
import { generateMigration, readMigrations } from './migrations.ts';
import { migrationsTableFor } from './migrator.ts';

const itemsV1 = pgTable('items', { id: serial('id').primaryKey(), name: text('name').notNull() });
const itemsV2 = pgTable('items', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  qty: integer('qty'),
});
const schemaV1 = { items: itemsV1 };
const schemaV2 = { items: itemsV2 };

const log = createLogger({ env: 'test', level: 'silent' });
const SLOW = 60_000;

let root: string;
let folders = 0;
const handles: DriverHandle<unknown>[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'gantry-db-'));
});

afterAll(async () => {
  await Promise.all(handles.map((handle) => handle.close()));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  // A DATABASE_URL in the environment running the tests must not turn them into PostgreSQL tests.
  vi.stubEnv('DATABASE_URL', '');
  return () => {
    vi.unstubAllEnvs();
  };
});

function freshFolder(): string {
  folders += 1;
  return path.join(root, `case-${folders}`);
}

function context(overrides: Partial<DriverOpenContext> = {}): DriverOpenContext {
  return { service: 'orders', alias: 'db', env: 'test', config: {}, dataDir: null, log, ...overrides };
}

async function open<TSchema extends Record<string, unknown>>(
  options: DatabaseOptions<TSchema>,
  overrides: Partial<DriverOpenContext> = {},
): Promise<DriverHandle<Database<TSchema>>> {
  const handle = await database(options).open(context(overrides));
  handles.push(handle);
  return handle;
}

async function rejection(promise: Promise<unknown>): Promise<GantryError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(GantryError);
  return error as GantryError;
}

describe('generateMigration', () => {
  it(
    'writes the folder format drizzle-orm reads, and nothing when the schema did not change',
    async () => {
      const dir = freshFolder();
      const first = await generateMigration({ schema: schemaV1, dir, name: 'Create items!' });
      expect(first).not.toBeNull();
      expect(first?.name).toBe('0000_create_items');
      expect(first?.file).toBe(path.join(dir, '0000_create_items.sql'));
      expect(first?.sql).toHaveLength(1);
      expect(first?.sql[0]).toMatch(/^CREATE TABLE "items" \(/);
      expect(existsSync(path.join(dir, 'meta', '0000_snapshot.json'))).toBe(true);

      expect(await generateMigration({ schema: schemaV1, dir })).toBeNull();

      const second = await generateMigration({ schema: schemaV2, dir: pathToFileURL(dir), name: 'add qty' });
      expect(second?.name).toBe('0001_add_qty');
      expect(second?.sql).toEqual(['ALTER TABLE "items" ADD COLUMN "qty" integer;']);

      const journal = JSON.parse(await readFile(path.join(dir, 'meta', '_journal.json'), 'utf8'));
      expect(journal.dialect).toBe('postgresql');
      expect(journal.entries.map((entry: { tag: string }) => entry.tag)).toEqual(['0000_create_items', '0001_add_qty']);
      expect(journal.entries[1].when).toBeGreaterThan(journal.entries[0].when);
      const snapshots = await Promise.all(
        ['0000', '0001'].map(async (idx) =>
          JSON.parse(await readFile(path.join(dir, 'meta', `${idx}_snapshot.json`), 'utf8')),
        ),
      );
      expect(snapshots[1].prevId).toBe(snapshots[0].id);

      // drizzle-orm's own reader and migrator accept the folder, and see the same migrations with the same hashes.
      const ours = await readMigrations(dir);
      const theirs = readMigrationFiles({ migrationsFolder: dir });
      expect(theirs.map((migration) => migration.hash)).toEqual(ours.map((migration) => migration.hash));
      expect(theirs.map((migration) => migration.folderMillis)).toEqual(ours.map((migration) => migration.when));
      const client = await PGlite.create();
      try {
        const db = drizzle({ client });
        await drizzleMigrate(db, { migrationsFolder: dir });
        await db.insert(itemsV2).values({ name: 'bolt', qty: 3 });
        expect(await db.select().from(itemsV2)).toEqual([{ id: 1, name: 'bolt', qty: 3 }]);
      } finally {
        await client.close();
      }
    },
    SLOW,
  );

  it('refuses a name without a letter or digit, and a journal that is not one', async () => {
    const dir = freshFolder();
    const badName = await rejection(generateMigration({ schema: schemaV1, dir, name: '---' }));
    expect(badName.code).toBe('GANTRY_ERR_CONFIG_INVALID');

    await generateMigration({ schema: schemaV1, dir });
    await writeFile(path.join(dir, 'meta', '_journal.json'), '{"entries": "nope"}');
    const badJournal = await rejection(generateMigration({ schema: schemaV2, dir }));
    expect(badJournal.code).toBe('GANTRY_ERR_CONFIG_INVALID');
    expect(badJournal.message).toContain('_journal.json');
  });

  it('reads a folder without a journal as holding no migrations', async () => {
    expect(await readMigrations(freshFolder())).toEqual([]);
  });
});

describe('database on PGlite', () => {
  it(
    'lists pending migrations, applies them once, then applies only what a later change adds',
    async () => {
      const dir = freshFolder();
      await generateMigration({ schema: schemaV1, dir, name: 'create items' });
      const driver = database({ schema: schemaV2, migrations: dir });
      expect(driver.kind).toBe('database');
      expect(driver.migrationsDir).toBe(dir);
      const handle = await driver.open(context({ config: { onPending: 'ignore' } }));
      handles.push(handle);
      const client = handle.client;
      expect(handle.embedded).toBe(true);
      expect(client.kind).toBe('pglite');

      const pending = await client.pending();
      expect(pending).toHaveLength(1);
      expect(pending[0]?.name).toBe('0000_create_items');
      expect(pending[0]?.sql[0]).toMatch(/^CREATE TABLE "items"/);

      expect(await client.migrate()).toEqual(['0000_create_items']);
      expect(await client.pending()).toEqual([]);
      expect(await client.migrate()).toEqual([]);

      const added = await generateMigration({ schema: schemaV2, dir, name: 'add qty' });
      expect(added?.sql).toEqual(['ALTER TABLE "items" ADD COLUMN "qty" integer;']);
      expect(await client.pending()).toEqual([{ name: '0001_add_qty', sql: added?.sql }]);
      expect(await client.migrate()).toEqual(['0001_add_qty']);
      expect(await client.pending()).toEqual([]);

      const inserted = await client.db.insert(itemsV2).values({ name: 'nut', qty: 12 }).returning();
      expect(inserted).toEqual([{ id: 1, name: 'nut', qty: 12 }]);
      const found = await client.db.select().from(itemsV2).where(eq(itemsV2.name, 'nut'));
      expect(found).toEqual([{ id: 1, name: 'nut', qty: 12 }]);
      expect(await client.db.query.items.findFirst({ where: eq(itemsV2.id, 1) })).toEqual(inserted[0]);

      // The record sits in the service's own schema, one row per migration, named.
      expect(client.migrationsTable).toEqual({ schema: 'gantry_orders', table: '__gantry_migrations' });
      const recorded = await client.db.execute(sql`select name from gantry_orders.__gantry_migrations order by id`);
      expect(recorded.rows).toEqual([{ name: '0000_create_items' }, { name: '0001_add_qty' }]);
    },
    SLOW,
  );

  it(
    'rolls a failing migration back whole, recording nothing',
    async () => {
      const dir = freshFolder();
      await generateMigration({ schema: schemaV1, dir });
      await writeFile(
        path.join(dir, '0000_migration.sql'),
        'create table broken (id int);--> statement-breakpoint\nnot sql',
      );
      const { client } = await open({ schema: schemaV1, migrations: dir }, { config: { onPending: 'ignore' } });
      await expect(client.migrate()).rejects.toThrow();
      expect((await client.pending()).map((migration) => migration.name)).toEqual(['0000_migration']);
      const tables = await client.db.execute(sql`select to_regclass('broken') as found`);
      expect(tables.rows).toEqual([{ found: null }]);
    },
    SLOW,
  );

  it(
    'applies pending migrations at open by default, so an in-memory database is ready to query',
    async () => {
      const dir = freshFolder();
      await generateMigration({ schema: schemaV2, dir });
      const { client } = await open({ schema: schemaV2, migrations: dir });
      expect(await client.pending()).toEqual([]);
      await client.db.insert(itemsV2).values({ name: 'washer' });
      expect(await client.db.select({ name: itemsV2.name, qty: itemsV2.qty }).from(itemsV2)).toEqual([
        { name: 'washer', qty: null },
      ]);
    },
    SLOW,
  );

  it(
    'refuses to open with pending migrations when told to fail, naming them',
    async () => {
      const dir = freshFolder();
      await generateMigration({ schema: schemaV1, dir, name: 'create items' });
      const error = await rejection(open({ schema: schemaV1, migrations: dir, onPending: 'fail' }));
      expect(error.code).toBe('GANTRY_ERR_DB_PENDING_MIGRATIONS');
      expect(error.message).toContain('0000_create_items');
      expect(error.details).toEqual({ pending: ['0000_create_items'] });
    },
    SLOW,
  );

  it(
    'keeps its files under <dataDir>/pglite when the host gives a folder',
    async () => {
      const dir = freshFolder();
      const dataDir = freshFolder();
      await generateMigration({ schema: schemaV1, dir });
      const first = await database({ schema: schemaV1, migrations: dir }).open(context({ dataDir }));
      await first.client.db.insert(itemsV1).values({ name: 'kept' });
      await first.close();
      expect(existsSync(path.join(dataDir, 'pglite', 'PG_VERSION'))).toBe(true);

      const again = await open({ schema: schemaV1, migrations: dir }, { dataDir });
      expect(await again.client.db.select({ name: itemsV1.name }).from(itemsV1)).toEqual([{ name: 'kept' }]);
    },
    SLOW,
  );

  it(
    'answers check() while open, and fails it once closed; close() may be called twice',
    async () => {
      const handle = await database({ schema: schemaV1, migrations: freshFolder() }).open(context());
      await expect(handle.check()).resolves.toBeUndefined();
      await handle.close();
      await expect(handle.close()).resolves.toBeUndefined();
      await expect(handle.check()).rejects.toThrow();
    },
    SLOW,
  );

  it('types the client from the schema, the same drizzle type on both backends', () => {
    type Client = Database<typeof schemaV2>;
    expectTypeOf<Client['db']>().toEqualTypeOf<DrizzleDatabase<typeof schemaV2>>();
    // Narrower than drizzle's generic pg database only in typing `execute` results, so code written for that accepts it.
    expectTypeOf<Client['db']>().toExtend<PgDatabase<PgQueryResultHKT, typeof schemaV2>>();
    const raw = (client: Client) => client.db.execute<{ n: number }>(sql`select 1 as n`);
    expectTypeOf<Awaited<ReturnType<typeof raw>>['rows']>().toEqualTypeOf<{ n: number }[]>();
    expectTypeOf<Client['kind']>().toEqualTypeOf<'pglite' | 'postgres'>();
    expectTypeOf<Awaited<ReturnType<Client['migrate']>>>().toEqualTypeOf<string[]>();
    expectTypeOf<Awaited<ReturnType<Client['pending']>>>().toEqualTypeOf<{ name: string; sql: string[] }[]>();
    const selectAll = (client: Client) => client.db.select().from(itemsV2);
    expectTypeOf<Awaited<ReturnType<typeof selectAll>>>().toEqualTypeOf<
      { id: number; name: string; qty: number | null }[]
    >();
  });
});

describe('choosing the backend', () => {
  it('refuses an unknown scheme, listing the valid ones without echoing the URL', async () => {
    const error = await rejection(
      database({ schema: schemaV1, migrations: freshFolder() }).open(
        context({ config: { url: 'mysql://root:hunter2@db/orders' } }),
      ),
    );
    expect(error.code).toBe('GANTRY_ERR_DRIVER_UNKNOWN_SCHEME');
    expect(error.message).toContain('postgres://');
    expect(error.message).toContain('postgresql://');
    expect(error.message).toContain("'mysql:'");
    expect(error.message).not.toContain('hunter2');
    expect(error.details).toEqual({ scheme: 'mysql', valid: ['postgres', 'postgresql'] });
  });

  it('takes the config url over DATABASE_URL, and DATABASE_URL over embedded', async () => {
    const driver = database({ schema: schemaV1, migrations: freshFolder() });
    vi.stubEnv('DATABASE_URL', 'sqlite://from-env');
    const fromConfig = await rejection(driver.open(context({ config: { url: 'redis://from-config' } })));
    expect(fromConfig.message).toContain("'redis:'");
    const fromEnv = await rejection(driver.open(context()));
    expect(fromEnv.message).toContain("'sqlite:'");
  });

  it('resolves URLs to backends', () => {
    expect(resolveDatabaseTarget(undefined, null)).toEqual({ kind: 'pglite', dataDir: null });
    expect(resolveDatabaseTarget(undefined, '/data/orders')).toEqual({
      kind: 'pglite',
      dataDir: path.join('/data/orders', 'pglite'),
    });
    expect(resolveDatabaseTarget('postgres://h/db', null)).toEqual({ kind: 'postgres', url: 'postgres://h/db' });
    expect(resolveDatabaseTarget('POSTGRESQL://h/db', null)).toEqual({ kind: 'postgres', url: 'POSTGRESQL://h/db' });
    expect(() => resolveDatabaseTarget('localhost/db', null)).toThrow(/without a scheme/);
  });

  it('refuses config of the wrong shape with a coded error naming the key', async () => {
    const driver = database({ schema: schemaV1, migrations: freshFolder() });
    const badPolicy = await rejection(driver.open(context({ config: { onPending: 'sometimes' } })));
    expect(badPolicy.code).toBe('GANTRY_ERR_CONFIG_INVALID');
    expect(badPolicy.message).toContain('orders.drivers.db.onPending');
    const badPool = await rejection(
      driver.open(context({ config: { url: 'postgres://127.0.0.1:1/none', poolSize: 0 } })),
    );
    expect(badPool.message).toContain('orders.drivers.db.poolSize');
  });

  it('names the package to install when a client library is missing', async () => {
    const missing = 'gantry-test-package-that-does-not-exist';
    const error = await rejection(loadClient(() => import(missing), missing));
    expect(error.code).toBe('GANTRY_ERR_DRIVER_MISSING_PACKAGE');
    expect(error.message).toContain(`npm install ${missing}`);
    expect(error.details).toEqual({ package: missing });
  });

  it('keeps the original error when a package is present but fails to load', async () => {
    const broken = new Error('boom');
    await expect(loadClient(() => Promise.reject(broken), 'pg')).rejects.toBe(broken);
  });

  it('gives each service its own migrations schema', () => {
    expect(migrationsTableFor('Orders-API')).toEqual({ schema: 'gantry_orders_api', table: '__gantry_migrations' });
    expect(migrationsTableFor('x'.repeat(80)).schema).toHaveLength(63);
  });
});
