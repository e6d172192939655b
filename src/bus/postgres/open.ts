import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import { PostgresLogBus, type PostgresLogBusOptions } from './bus.ts';
import { pgliteBusClient, pgPoolBusClient } from './client.ts';
import { parsePostgresBusUrl } from './options.ts';

/** Options of {@link openPostgresBus} and {@link openPgliteBus} beyond the URL. */
export interface OpenPostgresBusOptions {
  /** Names this process to the server (`application_name`), as `BusResolveOptions.instanceId` does. */
  instanceId?: string;
  /** See {@link PostgresLogBusOptions.onError}. */
  onError?: (error: Error) => void;
}

/**
 * Opens the bus on a PostgreSQL server named by a `postgres://` or `postgresql://` URL, through a pool of `pg`
 * connections plus one connection for LISTEN. Connections are made on first use, so opening succeeds while the
 * server is down. The bus options ride in the query string (see `PostgresBusOptions`); the rest of the URL goes to
 * `pg` untouched.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when `pg` is not installed, `GANTRY_ERR_CONFIG_INVALID`
 *   for a bad option.
 * @example
 * const bus = await openPostgresBus(new URL('postgres://app@db/app?claimTimeoutMs=10000'));
 */
export async function openPostgresBus(url: URL, options: OpenPostgresBusOptions = {}): Promise<PostgresLogBus> {
  const { options: busOptions, connectionString } = parsePostgresBusUrl(url);
  const { Pool, Client } = await loadClient(() => import('pg'), 'pg');
  const applicationName = `gantry-bus${options.instanceId ? ` ${options.instanceId}` : ''}`.slice(0, 63);
  const config = {
    connectionString: busOptions.transactionPooling ? connectionString : withPlannerSettings(connectionString),
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  };
  const pool = new Pool({ ...config, max: busOptions.poolSize });
  const client = pgPoolBusClient(pool, {
    connectListener: () => new Client(config),
    namedStatements: !busOptions.transactionPooling,
    ...(options.onError ? { onError: options.onError } : {}),
  });
  return new PostgresLogBus(client, withOnError(busOptions, options));
}

/**
 * Opens the bus on embedded PGlite: `pglite:memory` keeps it in memory (gone with the process), `pglite:./dir` or
 * `pglite:/abs/dir` keeps it in that folder (created when missing), so a restart loses nothing. A folder must be
 * opened by one bus of one process at a time.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when `@electric-sql/pglite` is not installed,
 *   `GANTRY_ERR_CONFIG_INVALID` for a URL without a folder or a bad option.
 * @example
 * const bus = await openPgliteBus(new URL('pglite:./.gantry/bus'));
 */
export async function openPgliteBus(url: URL, options: OpenPostgresBusOptions = {}): Promise<PostgresLogBus> {
  const { options: busOptions } = parsePostgresBusUrl(url);
  const where = decodeURIComponent(url.pathname);
  if (where === '') {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `bus URL '${url.protocol}' names no folder; use pglite:memory or pglite:./path/to/dir`,
    );
  }
  const { PGlite } = await loadClient(() => import('@electric-sql/pglite'), '@electric-sql/pglite');
  let db: InstanceType<typeof PGlite>;
  if (where === 'memory') {
    db = await PGlite.create();
  } else {
    const dir = path.resolve(where);
    await mkdir(dir, { recursive: true });
    db = await PGlite.create(dir);
  }
  // The database is the bus's alone, so its session may take the bus's planner settings.
  await db.exec(BUS_PLANNER_SETTINGS.map((setting) => `SET ${setting};`).join(' '));
  return new PostgresLogBus(pgliteBusClient(db), withOnError(busOptions, options));
}

/**
 * Planner settings for the bus's own sessions, sent as startup options (after any the URL gives). Every bus
 * statement is meant to run on its indexes, but on a table without statistics yet (new, or filled faster than
 * autovacuum analyses it) the planner guesses a handful of rows per group and answers a claim with a bitmap scan of
 * the whole group plus a sort: tens of milliseconds instead of one. With bitmap and sequential scans off it takes the
 * ordered index scan whatever the statistics say; a statement with no index to use still gets its scan. Since the
 * plans no longer depend on the values or the table's size, each named statement keeps one generic plan
 * (`plan_cache_mode`), which saves planning the claim every time.
 */
export const BUS_PLANNER_SETTINGS = [
  'enable_bitmapscan=off',
  'enable_seqscan=off',
  'plan_cache_mode=force_generic_plan',
] as const;

function withPlannerSettings(connectionString: string): string {
  const url = new URL(connectionString);
  const given = url.searchParams.get('options');
  const ours = BUS_PLANNER_SETTINGS.map((setting) => `-c ${setting}`).join(' ');
  url.searchParams.set('options', given ? `${given} ${ours}` : ours);
  return url.href;
}

function withOnError(busOptions: PostgresLogBusOptions, options: OpenPostgresBusOptions): PostgresLogBusOptions {
  return options.onError ? { ...busOptions, onError: options.onError } : busOptions;
}
