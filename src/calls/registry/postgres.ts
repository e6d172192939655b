import type { Pool } from 'pg';
import { loadClient } from '../../db/load-client.ts';
import type { InstanceRecord, Registry } from '../registry.ts';

/**
 * Opens the registry in the PostgreSQL database a `postgres://` URL names, creating its table if needed.
 * `?table=` names the table (default `gantry_registry`).
 *
 * @example
 * const registry = await openPostgresRegistry(new URL('postgres://postgres@127.0.0.1:5432/app'));
 */
export async function openPostgresRegistry(url: URL): Promise<PostgresRegistry> {
  const table = url.searchParams.get('table') ?? 'gantry_registry';
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new TypeError(`registry table '${table}' is not a plain SQL name`);
  const connection = new URL(url);
  connection.searchParams.delete('table');
  const pg = await loadClient(() => import('pg'), 'pg');
  const pool = new pg.default.Pool({ connectionString: connection.toString(), max: 2 });
  pool.on('error', () => undefined);
  const registry = new PostgresRegistry(pool, table);
  await registry.ensureTable();
  return registry;
}

/**
 * The registry in a PostgreSQL table: one row per instance with its record and an expiry the heartbeat pushes
 * forward; `list` reads rows not yet expired (the database's clock decides, so instances' clocks need not agree)
 * and deletes expired ones now and then.
 */
export class PostgresRegistry implements Registry {
  readonly kind = 'postgres';
  private lists = 0;

  private readonly pool: Pool;
  private readonly table: string;

  constructor(pool: Pool, table: string) {
    this.pool = pool;
    this.table = table;
  }

  /** Creates the table when it does not exist. */
  async ensureTable(): Promise<void> {
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
        service text NOT NULL,
        instance_id text NOT NULL,
        record jsonb NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (service, instance_id)
      )`,
    );
  }

  async register(record: InstanceRecord, ttlMs: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table} (service, instance_id, record, expires_at)
       VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
       ON CONFLICT (service, instance_id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`,
      [record.service, record.instanceId, JSON.stringify(record), ttlMs],
    );
  }

  async deregister(service: string, instanceId: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.table} WHERE service = $1 AND instance_id = $2`, [service, instanceId]);
  }

  async list(service?: string): Promise<InstanceRecord[]> {
    // Expired rows are harmless (never returned); sweeping them every hundredth read keeps the table small.
    if (++this.lists % 100 === 0) await this.pool.query(`DELETE FROM ${this.table} WHERE expires_at < now()`);
    const result =
      service === undefined
        ? await this.pool.query<{ record: InstanceRecord }>(
            `SELECT record FROM ${this.table} WHERE expires_at > now() ORDER BY service, instance_id`,
          )
        : await this.pool.query<{ record: InstanceRecord }>(
            `SELECT record FROM ${this.table} WHERE service = $1 AND expires_at > now() ORDER BY instance_id`,
            [service],
          );
    return result.rows.map((row) => row.record);
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
