import type { Driver, DriverHandle } from 'gantry';
import { database } from 'gantry/db';
import { mysql } from 'gantry/mysql';
import { mysqlReplicaStore } from './mysql-store.ts';
import { postgresReplicaStore } from './postgres-store.ts';
import { replicaCustomers } from './schema.ts';
import type { ReplicaStore } from './store.ts';

const embedded = database({ schema: { replicaCustomers }, migrations: new URL('./migrations', import.meta.url) });

/**
 * The replica's database: MySQL or MariaDB when the driver's `url` (or `REPLICA_URL`) is `mysql://…`, otherwise a
 * PostgreSQL database of its own (embedded PGlite in the replicator's data folder unless a `postgres://` url is set).
 * The `table` option names the MySQL table (default `replica_customers`).
 */
export function replicaDriver(): Driver<ReplicaStore> & {
  readonly schema: typeof embedded.schema;
  readonly migrationsDir: string;
} {
  return {
    kind: 'replica',
    schema: embedded.schema,
    migrationsDir: embedded.migrationsDir,
    async open(context): Promise<DriverHandle<ReplicaStore>> {
      const configured =
        typeof context.config.url === 'string' && context.config.url !== ''
          ? context.config.url
          : process.env.REPLICA_URL;
      if (configured?.startsWith('mysql://')) {
        const handle = await mysql().open({ ...context, config: { ...context.config, url: configured } });
        const table = typeof context.config.table === 'string' ? context.config.table : undefined;
        return { ...handle, client: await mysqlReplicaStore(handle.client, table) };
      }
      // The replica never shares the source's DATABASE_URL: it is a second database, so only its own url counts.
      const { url: _ignored, ...rest } = context.config;
      const handle = await embedded.open({
        ...context,
        config: {
          ...rest,
          ...(configured ? { url: configured } : { url: '' }),
          onPending: context.config.onPending ?? 'apply',
        },
      });
      return { ...handle, client: postgresReplicaStore(handle.client.db) };
    },
  };
}
