import { resolveEnv } from '../../config/env.ts';
import { loadConfig } from '../../config/load.ts';
import type { DatabaseDriver } from '../../db/database.ts';
import { generateMigration } from '../../db/migrations.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import { selectServices } from '../../host/select.ts';
import { createLogger } from '../../log/logger.ts';
import type { AnyService } from '../../service/service.ts';
import { loadHostFile } from '../load-host.ts';

interface DatabaseOf {
  service: AnyService;
  alias: string;
  driver: DatabaseDriver<Record<string, unknown>>;
}

function databasesOf(services: readonly AnyService[]): DatabaseOf[] {
  const found: DatabaseOf[] = [];
  for (const service of services) {
    for (const [alias, driver] of Object.entries(service.drivers)) {
      // Database drivers, and drivers built on one (they expose the schema and migrations folder they were given).
      if (driver.kind === 'database' || ('schema' in driver && 'migrationsDir' in driver)) {
        found.push({ service, alias, driver: driver as DatabaseDriver<Record<string, unknown>> });
      }
    }
  }
  return found;
}

async function chosenDatabases(services: string[], options: { host?: string }): Promise<DatabaseOf[]> {
  const definition = await loadHostFile(options.host);
  const databases = databasesOf(selectServices(definition.services, services));
  if (databases.length === 0)
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', 'none of the chosen services declares a database driver');
  return databases;
}

/** `gantry db generate [service…] [--name n]`: writes a migration from the difference between schema and snapshot. */
export async function dbGenerateCommand(services: string[], options: { host?: string; name?: string }): Promise<void> {
  for (const { service, alias, driver } of await chosenDatabases(services, options)) {
    const generated = await generateMigration({
      schema: driver.schema,
      dir: driver.migrationsDir,
      ...(options.name ? { name: options.name } : {}),
    });
    const label = `${service.info.name}.${alias}`;
    if (!generated) process.stdout.write(`${label}: schema unchanged, no migration written\n`);
    else process.stdout.write(`${label}: wrote ${generated.file}\n${generated.sql.map((s) => `  ${s}`).join('\n')}\n`);
  }
}

/** Opens each chosen database as its service would in the current env, without applying anything at open. */
async function withOpened(
  services: string[],
  options: { host?: string },
  use: (label: string, client: OpenedDatabase) => Promise<void>,
): Promise<void> {
  const databases = await chosenDatabases(services, options);
  const env = resolveEnv();
  const config = loadConfig(
    [...new Set(databases.map((d) => d.service))].map((svc) => ({
      name: svc.info.name,
      settings: svc.settingsSchema,
      drivers: Object.keys(svc.drivers),
    })),
    { env },
  );
  const log = createLogger({ env, level: 'warn' });
  for (const { service, alias, driver } of databases) {
    const own = config.services[service.info.name]?.drivers[alias] ?? {};
    const handle = await driver.open({
      service: service.info.name,
      alias,
      env,
      config: { ...(config.host.databaseUrl ? { url: config.host.databaseUrl } : {}), ...own, onPending: 'ignore' },
      dataDir: `${config.host.dataDir}/${service.info.name}`,
      log,
    });
    try {
      const client = handle.client as Partial<OpenedDatabase>;
      if (typeof client.migrate === 'function')
        await use(`${service.info.name}.${alias} (${handle.client.kind})`, client as OpenedDatabase);
      else process.stdout.write(`-- ${service.info.name}.${alias}: managed by its driver at start\n`);
    } finally {
      await handle.close();
    }
  }
}

interface OpenedDatabase {
  kind: string;
  migrate(): Promise<string[]>;
  pending(): Promise<{ name: string; sql: string[] }[]>;
}

/** `gantry db pending [service…]`: prints the SQL of every migration not yet applied, for review. */
export async function dbPendingCommand(services: string[], options: { host?: string }): Promise<void> {
  await withOpened(services, options, async (label, client) => {
    const pending = await client.pending();
    if (pending.length === 0) {
      process.stdout.write(`-- ${label}: up to date\n`);
      return;
    }
    for (const migration of pending) {
      process.stdout.write(`-- ${label}: ${migration.name}\n${migration.sql.map((s) => `${s.trim()};`).join('\n')}\n`);
    }
  });
}

/** `gantry db migrate [service…]`: applies pending migrations (the deploy step in qa and prod). */
export async function dbMigrateCommand(services: string[], options: { host?: string }): Promise<void> {
  await withOpened(services, options, async (label, client) => {
    const applied = await client.migrate();
    process.stdout.write(
      applied.length === 0 ? `${label}: nothing to apply\n` : `${label}: applied ${applied.join(', ')}\n`,
    );
  });
}
