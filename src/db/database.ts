import path from 'node:path';
import type { Driver, DriverHandle, DriverOpenContext } from '../drivers/driver.ts';
import { GantryError } from '../errors/gantry-error.ts';
import type { DatabaseConnection, DrizzleDatabase } from './connection.ts';
import { readMigrations, resolveMigrationsDir } from './migrations.ts';
import {
  applyMigrations,
  listPendingMigrations,
  type MigrationsTable,
  migrationsTableFor,
  type PendingMigration,
} from './migrator.ts';

/** The URL schemes a database URL may use; anything else is refused with the list. */
export const DATABASE_URL_SCHEMES = ['postgres', 'postgresql'] as const;

/** The backend behind a {@link Database}: embedded PGlite, or a PostgreSQL server through node-postgres. */
export type DatabaseKind = 'pglite' | 'postgres';

/**
 * What the driver does at open when the database lacks migrations the folder holds:
 * - `apply`: applies them before the service starts;
 * - `fail`: refuses to open with `GANTRY_ERR_DB_PENDING_MIGRATIONS`, naming them;
 * - `ignore`: opens anyway (for tools that open the database to review or apply migrations themselves).
 */
export type PendingMigrationsPolicy = 'apply' | 'fail' | 'ignore';

/** The values a {@link PendingMigrationsPolicy} may take, for validating config. */
export const PENDING_MIGRATIONS_POLICIES = [
  'apply',
  'fail',
  'ignore',
] as const satisfies readonly PendingMigrationsPolicy[];

/** Options of {@link database}. */
export interface DatabaseOptions<TSchema extends Record<string, unknown>> {
  /** The drizzle schema: the module exports holding the service's tables, enums and relations. */
  schema: TSchema;
  /**
   * The folder of migrations (`generateMigration` writes it; drizzle-kit's `generate` may too). A `file:` URL is
   * accepted, which keeps the path right wherever the service runs from: `new URL('./migrations', import.meta.url)`.
   */
  migrations: string | URL;
  /**
   * What to do at open about pending migrations. Defaults to `apply` on embedded PGlite (nobody else can migrate a
   * database living in the service's own process, often in memory) and `fail` on PostgreSQL, where migrating is a
   * deliberate step of a deploy and a service must not serve with its tables behind its code. The driver's config key
   * `onPending` overrides it.
   */
  onPending?: PendingMigrationsPolicy;
}

/**
 * The client a handler finds in `ctx.drivers.<alias>`: a drizzle database and its migrations.
 *
 * @example
 * const rows = await ctx.drivers.db.db.select().from(orders).where(eq(orders.id, id));
 * await ctx.drivers.db.db.transaction(async (tx) => { ... });
 */
export interface Database<TSchema extends Record<string, unknown>> {
  /** The drizzle database, of the same type on both backends; transactions are `db.transaction(...)`. */
  db: DrizzleDatabase<TSchema>;
  /** Which backend answered. */
  kind: DatabaseKind;
  /** Where this service records the migrations it applied. */
  migrationsTable: MigrationsTable;
  /**
   * Applies pending migrations in journal order and returns their names (empty when there were none). Atomic: all are
   * applied and recorded, or none. Safe to call from several processes at once: one applies, the others wait on a
   * PostgreSQL advisory lock, then find nothing left to apply.
   */
  migrate(): Promise<string[]>;
  /** Lists the migrations of the folder not yet applied, with their statements, for review. Changes nothing. */
  pending(): Promise<PendingMigration[]>;
}

/** A database driver: a {@link Driver} that also tells tools (the CLI's migration commands) its schema and folder. */
export interface DatabaseDriver<TSchema extends Record<string, unknown>> extends Driver<Database<TSchema>> {
  readonly kind: 'database';
  /** The schema the driver was declared with, for generating migrations from it. */
  readonly schema: TSchema;
  /** The migrations folder, as an absolute path. */
  readonly migrationsDir: string;
}

/**
 * The backend a database URL (or its absence) resolves to: embedded PGlite with the folder of its files (null for
 * memory), or a PostgreSQL server and its URL.
 */
export type DatabaseTarget = { kind: 'pglite'; dataDir: string | null } | { kind: 'postgres'; url: string };

/**
 * Declares a PostgreSQL database for a service, typed by its drizzle schema.
 *
 * At open the backend follows the URL: the driver config's `url`, else `DATABASE_URL`, else embedded PGlite
 * (in `<dataDir>/pglite`, or in memory when the host keeps no data). `postgres://` and `postgresql://` URLs get a
 * node-postgres pool of `poolSize` connections (config key, default 10). Each backend's client library is loaded only
 * when that backend is opened.
 *
 * @example
 * export const orders = pgTable('orders', { id: serial('id').primaryKey(), total: integer('total').notNull() });
 * const db = database({ schema: { orders }, migrations: new URL('./migrations', import.meta.url) });
 * // in a service: drivers: { db }, then in a handler: await ctx.drivers.db.db.select().from(orders)
 */
export function database<TSchema extends Record<string, unknown>>(
  options: DatabaseOptions<TSchema>,
): DatabaseDriver<TSchema> {
  const migrationsDir = resolveMigrationsDir(options.migrations);
  return {
    kind: 'database',
    schema: options.schema,
    migrationsDir,
    async open(context: DriverOpenContext): Promise<DriverHandle<Database<TSchema>>> {
      const target = resolveDatabaseTarget(configuredUrl(context), context.dataDir);
      const onPending = pendingPolicy(context, options.onPending ?? (target.kind === 'pglite' ? 'apply' : 'fail'));
      const connection = await connect(target, options.schema, context);
      const location = migrationsTableFor(context.service);
      const client: Database<TSchema> = {
        db: connection.db,
        kind: target.kind,
        migrationsTable: location,
        async migrate() {
          return applyMigrations(connection.db, location, await readMigrations(migrationsDir));
        },
        async pending() {
          return listPendingMigrations(connection.db, location, await readMigrations(migrationsDir));
        },
      };
      try {
        await settlePending(client, onPending, context);
      } catch (error) {
        await connection.close().catch(() => undefined);
        throw error;
      }
      context.log.debug({ alias: context.alias, kind: target.kind }, 'database opened');
      return { client, embedded: target.kind === 'pglite', check: connection.check, close: connection.close };
    },
  };
}

/**
 * Picks the backend for a database URL: none means embedded PGlite, `postgres://` and `postgresql://` mean a server.
 * Any other scheme is refused with `GANTRY_ERR_DRIVER_UNKNOWN_SCHEME`, listing the valid ones.
 *
 * @param url The configured URL, or undefined when none is set.
 * @param dataDir The host's data folder for the service, or null to keep embedded data in memory.
 * @example
 * resolveDatabaseTarget(undefined, '.gantry/orders'); // { kind: 'pglite', dataDir: '.gantry/orders/pglite' }
 * resolveDatabaseTarget('postgres://db/orders', null); // { kind: 'postgres', url: 'postgres://db/orders' }
 */
export function resolveDatabaseTarget(url: string | undefined, dataDir: string | null): DatabaseTarget {
  if (url === undefined) return { kind: 'pglite', dataDir: dataDir === null ? null : path.join(dataDir, 'pglite') };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return { kind: 'postgres', url };
  const valid = DATABASE_URL_SCHEMES.map((name) => `${name}://`).join(', ');
  // Only the scheme is quoted back: the rest of a URL may hold a password.
  const got = scheme === undefined ? 'a URL without a scheme' : `'${scheme}:'`;
  throw new GantryError(
    'GANTRY_ERR_DRIVER_UNKNOWN_SCHEME',
    `The database URL must start with one of ${valid} (or be left unset for embedded PGlite); got ${got}`,
    { details: { scheme: scheme ?? null, valid: [...DATABASE_URL_SCHEMES] } },
  );
}

/** The URL from the driver's config, else `DATABASE_URL`; an empty string counts as unset, as env files often leave. */
function configuredUrl(context: DriverOpenContext): string | undefined {
  const fromConfig = context.config.url;
  if (fromConfig !== undefined && typeof fromConfig !== 'string') {
    throw configError(context, 'url', 'must be a string');
  }
  if (fromConfig !== undefined && fromConfig !== '') return fromConfig;
  const fromEnv = process.env.DATABASE_URL;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

function pendingPolicy(context: DriverOpenContext, fallback: PendingMigrationsPolicy): PendingMigrationsPolicy {
  const value = context.config.onPending;
  if (value === undefined) return fallback;
  if ((PENDING_MIGRATIONS_POLICIES as readonly unknown[]).includes(value)) return value as PendingMigrationsPolicy;
  throw configError(context, 'onPending', `must be one of ${PENDING_MIGRATIONS_POLICIES.join(', ')}`);
}

function poolSize(context: DriverOpenContext): number {
  const value = context.config.poolSize;
  if (value === undefined) return 10;
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  throw configError(context, 'poolSize', 'must be a whole number above 0');
}

function configError(context: DriverOpenContext, key: string, problem: string): GantryError {
  const where = `${context.service}.drivers.${context.alias}.${key}`;
  return new GantryError('GANTRY_ERR_CONFIG_INVALID', `${where} ${problem}`, { details: { path: where } });
}

/** Opens the chosen backend; its module, and through it the client library, is imported only now. */
async function connect<TSchema extends Record<string, unknown>>(
  target: DatabaseTarget,
  schema: TSchema,
  context: DriverOpenContext,
): Promise<DatabaseConnection<TSchema>> {
  switch (target.kind) {
    case 'pglite': {
      const { openPglite } = await import('./pglite/driver.ts');
      return openPglite({ schema, dataDir: target.dataDir });
    }
    case 'postgres': {
      const { openNodePostgres } = await import('./node-postgres/driver.ts');
      return openNodePostgres({ schema, url: target.url, poolSize: poolSize(context), log: context.log });
    }
    default: {
      const unreachable: never = target;
      return unreachable;
    }
  }
}

async function settlePending<TSchema extends Record<string, unknown>>(
  client: Database<TSchema>,
  policy: PendingMigrationsPolicy,
  context: DriverOpenContext,
): Promise<void> {
  switch (policy) {
    case 'apply': {
      const applied = await client.migrate();
      if (applied.length > 0) context.log.info({ migrations: applied, alias: context.alias }, 'applied migrations');
      return;
    }
    case 'fail': {
      const pending = await client.pending();
      if (pending.length === 0) return;
      const names = pending.map((migration) => migration.name);
      throw new GantryError(
        'GANTRY_ERR_DB_PENDING_MIGRATIONS',
        `The ${context.service} database lacks ${names.length} migration(s): ${names.join(', ')}. Apply them (migrate()) ` +
          `before starting, or set ${context.service}.drivers.${context.alias}.onPending to 'apply'`,
        { details: { pending: names } },
      );
    }
    case 'ignore':
      return;
    default: {
      const unreachable: never = policy;
      return unreachable;
    }
  }
}
