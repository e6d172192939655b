import type { ParserOptions, QueryOptions } from '@electric-sql/pglite';

/**
 * The types drizzle reads from PGlite as text and converts itself: timestamp, timestamptz, interval, date, and the
 * arrays of numeric, timestamp, timestamptz, interval and date (the oids drizzle's PGlite session lists).
 */
const TEXT_TYPES: readonly number[] = [1114, 1184, 1186, 1082, 1231, 1115, 1185, 1187, 1182];
const textTypes = new Set(TEXT_TYPES);

function asText(value: string): string {
  return value;
}

/**
 * Parsers that leave drizzle's {@link TEXT_TYPES} as text, for the client's own options (`new PGlite({ parsers })`):
 * installed once, they stand for the same parsers drizzle passes with every query.
 */
export function textParsers(): ParserOptions {
  return Object.fromEntries(TEXT_TYPES.map((type) => [type, asText]));
}

/** Something with PGlite's `query`: the client, or a transaction it hands out. */
interface Queryable {
  query: (query: string, params?: unknown[], options?: QueryOptions) => Promise<unknown>;
}

/**
 * Wraps `target.query` so that a query bringing only parsers that read drizzle's text types as text runs without
 * them: the client (created with {@link textParsers}) already reads those types so.
 *
 * @remarks Why: PGlite merges a query's own parsers into a copy of its whole table of parsers (over a hundred entries,
 * one per array type it knows) before reading the rows, and drizzle passes its parsers with every query. That copy
 * cost 130 to 170 µs per statement on our machines, more than the statement itself took to run. A query whose
 * parsers do anything else (another type, a parser that does not hand back its text) keeps them.
 */
export function skipRepeatedTextParsers(target: Queryable): void {
  const query = target.query.bind(target);
  target.query = (text, params, options) => query(text, params, withoutTextParsers(options));
}

function withoutTextParsers(options: QueryOptions | undefined): QueryOptions | undefined {
  const parsers = options?.parsers;
  if (parsers === undefined) return options;
  for (const key in parsers) {
    const type = Number(key);
    if (!textTypes.has(type)) return options;
    const parse = parsers[type];
    if (parse === undefined || parse('0') !== '0') return options;
  }
  const { parsers: _installed, ...rest } = options as QueryOptions;
  return rest;
}
