import type { MySqlClient } from 'gantry/mysql';
import type { ReplicaRow, ReplicaStatus, ReplicaStore } from './store.ts';

interface Row {
  id: string;
  name: string;
  email: string;
  version: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  applied_at: Date;
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** MySQL DATETIME takes no zone: write UTC as `YYYY-MM-DD HH:MM:SS.mmm`. */
const toDatetime = (value: string | null): string | null =>
  value === null ? null : new Date(value).toISOString().replace('T', ' ').replace('Z', '');

function toReplicaRow(row: Row): ReplicaRow {
  const iso = (value: Date) => value.toISOString();
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

/**
 * The replica in MySQL or MariaDB. The table is created if missing. The upsert's assignments are guarded by the
 * version and `version` is assigned last, because MySQL evaluates them in order and later ones see earlier results.
 */
export async function mysqlReplicaStore(client: MySqlClient, table = 'replica_customers'): Promise<ReplicaStore> {
  if (!TABLE_NAME.test(table)) throw new Error(`replica table name '${table}' is not a plain identifier`);
  await client.query(`create table if not exists \`${table}\` (
    id char(36) primary key,
    name varchar(200) not null,
    email varchar(320) not null,
    version int not null,
    created_at datetime(3) not null,
    updated_at datetime(3) not null,
    deleted_at datetime(3) null,
    applied_at datetime(3) not null
  )`);
  const newer = 'values(version) > version';
  return {
    kind: 'mysql',
    async upsert(row) {
      const { affectedRows } = await client.run(
        `insert into \`${table}\` (id, name, email, version, created_at, updated_at, deleted_at, applied_at)
         values (?, ?, ?, ?, ?, ?, ?, utc_timestamp(3))
         on duplicate key update
           name = if(${newer}, values(name), name),
           email = if(${newer}, values(email), email),
           created_at = if(${newer}, values(created_at), created_at),
           updated_at = if(${newer}, values(updated_at), updated_at),
           deleted_at = if(${newer}, values(deleted_at), deleted_at),
           applied_at = if(${newer}, values(applied_at), applied_at),
           version = if(${newer}, values(version), version)`,
        [
          row.id,
          row.name,
          row.email,
          row.version,
          toDatetime(row.createdAt),
          toDatetime(row.updatedAt),
          toDatetime(row.deletedAt),
        ],
      );
      return affectedRows > 0;
    },
    async get(id) {
      const [row] = await client.query<Row & Record<string, unknown>>(`select * from \`${table}\` where id = ?`, [id]);
      return row && toReplicaRow(row);
    },
    async page(afterId, limit) {
      const rows = afterId
        ? await client.query<Row & Record<string, unknown>>(
            `select * from \`${table}\` where id > ? order by id limit ?`,
            [afterId, limit],
          )
        : await client.query<Row & Record<string, unknown>>(`select * from \`${table}\` order by id limit ?`, [limit]);
      return rows.map(toReplicaRow);
    },
    async status(): Promise<ReplicaStatus> {
      const [counts] = await client.query<{ live: number; deleted: number }>(
        `select sum(deleted_at is null) as live, sum(deleted_at is not null) as deleted from \`${table}\``,
      );
      const [latest] = await client.query<Row & Record<string, unknown>>(
        `select * from \`${table}\` order by applied_at desc limit 1`,
      );
      return {
        rows: Number(counts?.live ?? 0),
        deleted: Number(counts?.deleted ?? 0),
        lastApplied: latest
          ? { customerId: latest.id, version: Number(latest.version), at: latest.applied_at.toISOString() }
          : null,
      };
    },
    async clear() {
      await client.query(`delete from \`${table}\``);
    },
  };
}
