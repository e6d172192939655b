import { PGlite, type QueryOptions } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { pgTable, serial, timestamp } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { openPglite } from './driver.ts';
import { skipRepeatedTextParsers, textParsers } from './text-parsers.ts';

const client = new PGlite({ parsers: textParsers() });
afterAll(() => client.close());

/** The options each query reached PGlite's own `query` with. */
function recordOptions(target: PGlite): (QueryOptions | undefined)[] {
  const seen: (QueryOptions | undefined)[] = [];
  const query = target.query.bind(target);
  target.query = ((text: string, params?: unknown[], options?: QueryOptions) => {
    seen.push(options);
    return query(text, params, options);
  }) as PGlite['query'];
  return seen;
}

describe('PGlite text parsers', () => {
  it('read dates, times and intervals as text once installed on the client', async () => {
    const { rows } = await client.query<{ at: unknown; day: unknown; span: unknown }>(
      `select timestamptz '2026-11-24 10:00:00+00' as at, date '2026-11-24' as day, interval '1 day' as span`,
    );
    expect(rows[0]).toEqual({ at: '2026-11-24 10:00:00+00', day: '2026-11-24', span: '1 day' });
  });

  it('are what the database driver opens PGlite with', async () => {
    const connection = await openPglite({ schema: {}, dataDir: null });
    const { rows } = await (connection.db as unknown as { $client: PGlite }).$client.query<{ at: unknown }>(
      `select timestamptz '2026-11-24 10:00:00+00' as at`,
    );
    await connection.close();
    expect(rows[0]?.at).toBe('2026-11-24 10:00:00+00');
  });

  it('leave out only the per-query parsers the client already applies', async () => {
    const seen = recordOptions(client);
    skipRepeatedTextParsers(client);
    const asText = (value: string) => value;
    // drizzle's parsers: the client's own, so they are dropped and the rest of the options kept.
    await client.query('select 1', [], { rowMode: 'array', parsers: { 1184: asText, 1082: asText } });
    expect(seen.at(-1)).toEqual({ rowMode: 'array' });
    // A parser that changes the text is the caller's own: kept, and applied.
    const shout = (value: string) => `at ${value}`;
    const changed = await client.query<{ at: string }>(`select timestamptz '2026-11-24 10:00:00+00' as at`, [], {
      parsers: { 1184: shout },
    });
    expect(seen.at(-1)?.parsers?.[1184]).toBe(shout);
    expect(changed.rows[0]?.at).toBe('at 2026-11-24 10:00:00+00');
    // A parser of another type: kept.
    const count = (value: string) => Number(value) * 2;
    const doubled = await client.query<{ n: number }>('select 21 as n', [], { parsers: { 23: count } });
    expect(seen.at(-1)?.parsers?.[23]).toBe(count);
    expect(doubled.rows[0]?.n).toBe(42);
  });

  it('give drizzle the same values as when it brings its own parsers', async () => {
    const events = pgTable('events', {
      id: serial('id').primaryKey(),
      at: timestamp('at', { withTimezone: true }).notNull(),
      noted: timestamp('noted', { withTimezone: true, mode: 'string' }).notNull(),
    });
    const fast = new PGlite({ parsers: textParsers() });
    skipRepeatedTextParsers(fast);
    const plain = new PGlite();
    const both = [drizzle({ client: fast }), drizzle({ client: plain })];
    const read = await Promise.all(
      both.map(async (db) => {
        await db.execute(
          sql`create table if not exists events (id serial primary key, at timestamptz not null, noted timestamptz not null)`,
        );
        const at = new Date('2026-11-24T10:00:00.123Z');
        await db.insert(events).values({ at, noted: '2026-11-24 10:00:00+00' });
        return db.select().from(events);
      }),
    );
    await Promise.all([fast.close(), plain.close()]);
    expect(read[0]).toEqual(read[1]);
    expect(read[0]?.[0]?.at).toEqual(new Date('2026-11-24T10:00:00.123Z'));
  });
});
