import { sql } from 'drizzle-orm';
import type { Database } from 'gantry/db';
import type { ReplicaRow, ReplicaStatus, ReplicaStore } from './store.ts';

type Db = Database<Record<string, unknown>>['db'];

type Row = {
  id: string;
  name: string;
  email: string;
  version: number;
  created_at: string | Date;
  updated_at: string | Date;
  deleted_at: string | Date | null;
  applied_at: string | Date;
};

const iso = (value: string | Date): string => new Date(value).toISOString();

function toReplicaRow(row: Row): ReplicaRow {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    version: Number(row.version),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    deletedAt: row.deleted_at === null ? null : iso(row.deleted_at),
    appliedAt: iso(row.applied_at),
  };
}

/** The replica in PostgreSQL (embedded PGlite by default): its table comes with the replicator's migrations. */
export function postgresReplicaStore(db: Db): ReplicaStore {
  return {
    kind: 'postgres',
    async upsert(row) {
      const { rows } = await db.execute<{ id: string }>(sql`
        insert into replica_customers (id, name, email, version, created_at, updated_at, deleted_at, applied_at)
        values (${row.id}, ${row.name}, ${row.email}, ${row.version}, ${row.createdAt}, ${row.updatedAt}, ${row.deletedAt}, now())
        on conflict (id) do update set name = excluded.name, email = excluded.email, version = excluded.version,
          created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, applied_at = now()
        where replica_customers.version < excluded.version
        returning id`);
      return rows.length > 0;
    },
    async get(id) {
      const { rows } = await db.execute<Row>(sql`select * from replica_customers where id = ${id}`);
      return rows[0] && toReplicaRow(rows[0]);
    },
    async page(afterId, limit) {
      const where = afterId ? sql`where id > ${afterId}` : sql``;
      const { rows } = await db.execute<Row>(sql`select * from replica_customers ${where} order by id limit ${limit}`);
      return rows.map(toReplicaRow);
    },
    async status(): Promise<ReplicaStatus> {
      const { rows: counts } = await db.execute<{ live: string | number; deleted: string | number }>(
        sql`select count(*) filter (where deleted_at is null) as live, count(*) filter (where deleted_at is not null) as deleted from replica_customers`,
      );
      const { rows: last } = await db.execute<Row>(
        sql`select * from replica_customers order by applied_at desc limit 1`,
      );
      const latest = last[0];
      return {
        rows: Number(counts[0]?.live ?? 0),
        deleted: Number(counts[0]?.deleted ?? 0),
        lastApplied: latest
          ? { customerId: latest.id, version: Number(latest.version), at: iso(latest.applied_at) }
          : null,
      };
    },
    async clear() {
      await db.execute(sql`delete from replica_customers`);
    },
  };
}
