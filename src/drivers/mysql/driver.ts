import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Driver, DriverHandle, DriverOpenContext } from '../driver.ts';

/** Rows of a query, as plain objects. */
export type MySqlRow = Record<string, unknown>;

/** What `ctx.drivers.<alias>` is for a MySQL/MariaDB driver. */
export interface MySqlClient {
  /** Runs one statement with `?` placeholders; SELECTs resolve to their rows, other statements to `[]`. */
  query<Row extends MySqlRow = MySqlRow>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs one writing statement and tells how many rows it touched (MySQL counts an upsert's update as 2). */
  run(sql: string, params?: readonly unknown[]): Promise<{ affectedRows: number }>;
  /** Runs `work` on one connection inside a transaction, committed when it resolves and rolled back when it throws. */
  transaction<T>(work: (query: MySqlClient['query']) => Promise<T>): Promise<T>;
}

/**
 * A MySQL or MariaDB driver through mysql2's promise pool, at the driver's `url` (`mysql://user:pass@host:port/db`).
 * `poolSize` sets the pool (default 10).
 */
export function mysql(): Driver<MySqlClient> {
  return {
    kind: 'mysql',
    async open(context: DriverOpenContext): Promise<DriverHandle<MySqlClient>> {
      const url = context.config.url;
      if (typeof url !== 'string' || !/^mysql:\/\//.test(url)) {
        throw new GantryError(
          'GANTRY_ERR_CONFIG_INVALID',
          `driver '${context.service}.${context.alias}' needs a url of the form mysql://user:pass@host:port/database`,
        );
      }
      const { createPool } = await loadClient(() => import('mysql2/promise'), 'mysql2');
      const poolSize = typeof context.config.poolSize === 'number' ? context.config.poolSize : 10;
      // Dates are read and written as UTC, whatever the server's or this process's zone.
      const pool = createPool({ uri: url, connectionLimit: poolSize, waitForConnections: true, timezone: 'Z' });
      const query: MySqlClient['query'] = async <Row extends MySqlRow>(
        sql: string,
        params: readonly unknown[] = [],
      ) => {
        const [rows] = await pool.query(sql, params as unknown[]);
        return (Array.isArray(rows) ? rows : []) as Row[];
      };
      const client: MySqlClient = {
        query,
        async run(sql, params = []) {
          const [result] = await pool.query(sql, params as unknown[]);
          return { affectedRows: (result as { affectedRows?: number }).affectedRows ?? 0 };
        },
        async transaction(work) {
          const connection = await pool.getConnection();
          try {
            await connection.beginTransaction();
            const run: MySqlClient['query'] = async <Row extends MySqlRow>(
              sql: string,
              params: readonly unknown[] = [],
            ) => {
              const [rows] = await connection.query(sql, params as unknown[]);
              return (Array.isArray(rows) ? rows : []) as Row[];
            };
            const result = await work(run);
            await connection.commit();
            return result;
          } catch (error) {
            await connection.rollback().catch(() => undefined);
            throw error;
          } finally {
            connection.release();
          }
        },
      };
      return {
        client,
        embedded: false,
        check: async () => {
          await pool.query('select 1');
        },
        close: async () => pool.end(),
      };
    },
  };
}
