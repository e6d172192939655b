import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { runJobStoreConformance } from '../../../test/conformance/job-store-conformance.ts';
import type { SqlRunner } from '../../outbox/tables.ts';
import { PostgresJobStore } from './store.ts';

runJobStoreConformance('PGlite', async () => {
  const client = await PGlite.create();
  const db = drizzle({ client }) as unknown as SqlRunner;
  const schema = 'gantry_conformance';
  return {
    store: new PostgresJobStore({ db, schema }),
    transaction: (fn) => db.transaction((tx) => fn(tx)),
    ageHeartbeats: async (ms) => {
      await db.execute(
        sql`update ${sql.identifier(schema)}.jobs set heartbeat_at = heartbeat_at - make_interval(secs => ${ms / 1000}::double precision) where state = 'running'`,
      );
    },
    close: () => client.close(),
  };
});
