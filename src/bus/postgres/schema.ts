import type { Envelope } from '../envelope.ts';
import { encodeRow } from './codec.ts';
import { DEFAULT_BUS_SCHEMA, postgresBusOptions } from './options.ts';

/**
 * The tables of the bus, in one script that is safe to run again and by several processes at once: every statement
 * is `IF NOT EXISTS`, and they run after an advisory lock, because two sessions racing on `CREATE TABLE IF NOT EXISTS`
 * can still both try to create the table and one fails on the catalogue's unique index.
 *
 * The script holds no transaction control: sent as one simple-protocol query it runs as one implicit transaction,
 * so the transaction-scoped lock is held to the end and a failure leaves nothing half-made (and no connection stuck
 * in an aborted transaction).
 *
 * - `messages`: one row per published message, in a global `bigserial` order. Headers are the CloudEvents headers
 *   of the wire codec, the body is the JSON text of `data`, `key` the partition key (`subject`).
 * - `groups`: every (stream, group) ever subscribed, with a small id. A group gets the messages published after its
 *   row exists.
 * - `deliveries`: one row per message and group not yet acknowledged, keyed by (group id, message id) so the rows and
 *   the index stay narrow. `attempts` counts claims; `visible_at` is when a retried message may be claimed again;
 *   `locked_until` is the lease of the consumer holding it, named in `consumer`. Acking deletes the row. The fill
 *   factor leaves room on each page, so the update of a claim can stay on its page (no index change), and autovacuum
 *   comes early, as the table is all inserts and deletes.
 *
 * Later versions add columns with `ADD COLUMN IF NOT EXISTS` in this same script, so it stays the only migration.
 *
 * @param schema A name checked by {@link postgresBusOptions}; it is quoted but not escaped.
 */
export function busSchemaSql(schema: string = DEFAULT_BUS_SCHEMA): string {
  const s = quoted(schema);
  return `
SELECT pg_advisory_xact_lock(hashtext('gantry_bus'), hashtext(${literal(schema)}));
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.messages (
  id bigserial PRIMARY KEY,
  stream text NOT NULL,
  key text,
  headers jsonb NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${s}.groups (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream, name)
);
CREATE TABLE IF NOT EXISTS ${s}.deliveries (
  group_id integer NOT NULL,
  message_id bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  visible_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz,
  consumer text,
  PRIMARY KEY (group_id, message_id)
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
`;
}

/**
 * An INSERT of one message, as {@link postgresPublishStatement} returns it: run `text` with `values` on any
 * PostgreSQL client (`client.query(text, values)` with pg, `tx.query(text, values)` with PGlite).
 */
export interface PostgresStatement {
  text: string;
  values: unknown[];
}

/**
 * The statement that publishes `envelope` to `stream`, for a transactional outbox: run it inside your own
 * transaction and the message exists if, and only if, the transaction commits. It inserts the message, one delivery
 * per group of the stream, and queues a NOTIFY that PostgreSQL sends at commit to wake consumers. It is the statement
 * `PostgresLogBus.publish` runs (with one message instead of a batch, and arrays where the bus joins its batch's
 * headers and bodies into one text each).
 *
 * The bus tables must exist (any bus on that database and schema creates them on first use, or run
 * {@link busSchemaSql} in a migration).
 *
 * @param options.schema The bus schema, as in the bus URL's `?schema=` (default `gantry_bus`).
 * @throws GantryError `GANTRY_ERR_STREAM_INVALID_MESSAGE` when the message holds a NUL character, which PostgreSQL
 *   text cannot store.
 * @example
 * const client = await pool.connect();
 * await client.query('BEGIN');
 * await client.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [id, total]);
 * const { text, values } = postgresPublishStatement('orders.placed', envelope);
 * await client.query(text, values);
 * await client.query('COMMIT');
 */
export function postgresPublishStatement(
  stream: string,
  envelope: Envelope,
  options: { schema?: string } = {},
): PostgresStatement {
  const { schema } = postgresBusOptions(options.schema === undefined ? {} : { schema: options.schema });
  const row = encodeRow(stream, envelope);
  return { text: busStatements(schema).publish, values: [[row.stream], [row.key], [row.headers], [row.body], schema] };
}

/** The SQL the bus runs, over one schema. Parameters are documented on each statement. */
export interface BusStatements {
  /** $1 streams, $2 keys, $3 headers (JSON text), $4 bodies, $5 the NOTIFY channel: arrays of the same length. */
  publish: string;
  /**
   * What `publish` does, with $3 the headers and $4 the bodies each joined by {@link JOINED_SEPARATOR} into one text
   * instead of text arrays: JSON text never holds that character raw, and the driver then sends them as they are,
   * without quoting and escaping every element of an array literal (a measurable share of a publish's cost).
   */
  publishJoined: string;
  /**
   * $1 stream, $2 group. Returns the group's id; no row when another session created the group at the same moment
   * (run it again).
   */
  registerGroup: string;
  /** $1 group id, $2 most rows, $3 lease in ms, $4 consumer name. Returns id, attempts, headers, body, found. */
  claim: string;
  /** $1 group id, $2 message ids (text[]), $3 the lowest of them, $4 the highest. */
  ack: string;
  /** $1 group id, $2 message id, $3 attempts when claimed, $4 delay in ms. */
  retry: string;
  /**
   * $1 group id, $2 message ids, $3 attempts when claimed (int[]), $4 the lowest id, $5 the highest: gives back
   * claims never handed out.
   */
  unclaim: string;
  /** $1 stream, $2 group. Returns lag (0 for a group that does not exist). */
  lag: string;
  /** $1 retention in ms, $2 most rows. Returns the number deleted. */
  cleanup: string;
  /** $1 stream, $2 group. */
  deleteGroup: string;
}

/** Builds the statements of {@link BusStatements} for `schema` (checked by {@link postgresBusOptions}). */
export function busStatements(schema: string): BusStatements {
  const s = quoted(schema);
  return {
    publish: publishSql(s, '$3::text[]', '$4::text[]'),
    publishJoined: publishSql(
      s,
      `string_to_array($3::text, ${JOINED_SEPARATOR_SQL})`,
      `string_to_array($4::text, ${JOINED_SEPARATOR_SQL})`,
    ),
    // The SELECT does not see a row another session inserted after this statement began, so when both race the
    // loser gets no row and asks again.
    registerGroup: `
WITH created AS (
  INSERT INTO ${s}.groups (stream, name) VALUES ($1, $2) ON CONFLICT (stream, name) DO NOTHING RETURNING id
)
SELECT id FROM created
UNION ALL
SELECT id FROM ${s}.groups WHERE stream = $1 AND name = $2`,
    // SKIP LOCKED lets the consumers of a group claim side by side without waiting on each other; the lowest ids
    // first, so one key's messages come out in publish order. The lease is the claim: a consumer that dies leaves
    // rows whose locked_until passes, and the next claim takes them with one more attempt counted. The UPDATE finds
    // the rows by their ctid (stable while they are locked), a TID scan whatever the statistics say: a join on
    // message_id let the planner of a freshly filled table scan the whole group, once per claimed row.
    // A claim commits without waiting for its WAL to reach disk (synchronous_commit off for this transaction
    // only): a claim lost in a server crash just leaves the message unclaimed, to be delivered again with that
    // attempt uncounted, and consuming costs one disk flush per batch (the ack's) instead of two.
    claim: `
WITH picked AS (
  SELECT ctid FROM ${s}.deliveries
  WHERE group_id = $1 AND visible_at <= now() AND (locked_until IS NULL OR locked_until <= now())
  ORDER BY message_id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE ${s}.deliveries d
  SET attempts = d.attempts + 1, locked_until = now() + $3::integer * interval '1 millisecond', consumer = $4
  WHERE d.ctid = ANY(ARRAY(SELECT ctid FROM picked))
  RETURNING d.message_id, d.attempts
), relaxed AS MATERIALIZED (
  SELECT set_config('synchronous_commit', 'off', true)
)
SELECT c.message_id::text AS id, c.attempts, m.headers, m.body, m.id IS NOT NULL AS found
FROM claimed c CROSS JOIN relaxed LEFT JOIN ${s}.messages m ON m.id = c.message_id
ORDER BY c.message_id`,
    // The id range is for the planner: `= ANY(array)` on the second key column may be left out of the index
    // condition (and applied as a filter over the whole group) when statistics are missing, as on a new table; a
    // range on it never is, so the scan stays within the batch's ids.
    ack: `
DELETE FROM ${s}.deliveries
WHERE group_id = $1 AND message_id BETWEEN $3::bigint AND $4::bigint AND message_id = ANY($2::bigint[])`,
    // Fenced by the attempt: once the lease ran out and another consumer claimed the message, a late retry from
    // the first one must not cut the new lease short.
    retry: `
UPDATE ${s}.deliveries
SET visible_at = now() + $4::integer * interval '1 millisecond', locked_until = NULL, consumer = NULL
WHERE group_id = $1 AND message_id = $2::bigint AND attempts = $3`,
    unclaim: `
UPDATE ${s}.deliveries d
SET attempts = d.attempts - 1, locked_until = NULL, consumer = NULL
FROM unnest($2::bigint[], $3::integer[]) AS u(message_id, attempts)
WHERE d.group_id = $1 AND d.message_id BETWEEN $4::bigint AND $5::bigint
  AND d.message_id = u.message_id AND d.attempts = u.attempts`,
    lag: `
SELECT count(d.message_id)::integer AS lag
FROM ${s}.groups g LEFT JOIN ${s}.deliveries d ON d.group_id = g.id
WHERE g.stream = $1 AND g.name = $2`,
    // A message may go once no group of its stream holds a delivery at or below its id: the lowest pending id of
    // each group is its watermark. Streams without groups have no watermark, so all their messages may go.
    cleanup: `
WITH low AS (
  SELECT g.stream, min(first.message_id) AS id
  FROM ${s}.groups g
  CROSS JOIN LATERAL (
    SELECT d.message_id FROM ${s}.deliveries d WHERE d.group_id = g.id ORDER BY d.message_id LIMIT 1
  ) AS first
  GROUP BY g.stream
), doomed AS (
  SELECT m.id FROM ${s}.messages m LEFT JOIN low ON low.stream = m.stream
  WHERE (low.id IS NULL OR m.id < low.id) AND m.created_at <= now() - $1::integer * interval '1 millisecond'
  ORDER BY m.id
  LIMIT $2
), deleted AS (
  DELETE FROM ${s}.messages m USING doomed WHERE m.id = doomed.id RETURNING 1
)
SELECT count(*)::integer AS deleted FROM deleted`,
    deleteGroup: `
WITH doomed AS (
  DELETE FROM ${s}.groups WHERE stream = $1 AND name = $2 RETURNING id
)
DELETE FROM ${s}.deliveries d USING doomed WHERE d.group_id = doomed.id`,
  };
}

/**
 * Joins the headers and the bodies of a batch for `publishJoined`: U+001F (unit separator), a control character that
 * JSON text always escapes, so it can never be part of a header set or a body the codec wrote.
 */
export const JOINED_SEPARATOR = '\u001f';
const JOINED_SEPARATOR_SQL = "E'\\x1f'";

/**
 * The publish statement over `s`, its headers and bodies read from `headers` and `bodies` (two SQL expressions
 * giving text arrays as long as $1).
 */
function publishSql(s: string, headers: string, bodies: string): string {
  // The input keeps its order (WITH ORDINALITY) so ids follow the order of the publish calls; a message gets one
  // delivery per group that exists when the statement runs. Data-modifying CTEs always run to completion, so the
  // final SELECT may read only the input.
  return `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], ${headers}, ${bodies}) WITH ORDINALITY AS i(stream, key, headers, body, ord)
), inserted AS (
  INSERT INTO ${s}.messages (stream, key, headers, body)
  SELECT stream, key, headers::jsonb, body FROM input ORDER BY ord
  RETURNING id, stream
), fanned AS (
  INSERT INTO ${s}.deliveries (group_id, message_id)
  SELECT g.id, i.id FROM inserted i JOIN ${s}.groups g ON g.stream = i.stream
)
SELECT pg_notify($5::text, stream) FROM (SELECT DISTINCT stream FROM input) AS streams`;
}

function quoted(identifier: string): string {
  return `"${identifier}"`;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
