import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DrizzleSnapshotJSON } from 'drizzle-kit/api';
import { GantryError } from '../errors/gantry-error.ts';
import { loadClient } from './load-client.ts';

/**
 * The line drizzle-kit writes between two statements of a migration file, and drizzle-orm's migrator splits on.
 * Each statement runs on its own because PostgreSQL refuses several statements in one prepared query.
 */
export const STATEMENT_BREAKPOINT = '--> statement-breakpoint';

/** One line of `meta/_journal.json`: a migration, in the order it is applied. */
export interface MigrationJournalEntry {
  /** Position in the journal, from 0; also the number that starts the file names (`0003_…`). */
  idx: number;
  /** Snapshot format version (`"7"` for PostgreSQL with drizzle-kit 0.31). */
  version: string;
  /** Milliseconds since the epoch when the migration was generated; its identity in the migrations table. */
  when: number;
  /** The file name without `.sql`, e.g. `0001_add_orders`. */
  tag: string;
  /** True when statements are separated by {@link STATEMENT_BREAKPOINT}. */
  breakpoints: boolean;
}

/** The contents of `meta/_journal.json`, in the format drizzle-kit writes and drizzle-orm's migrator reads. */
export interface MigrationJournal {
  version: string;
  dialect: string;
  entries: MigrationJournalEntry[];
}

/** A migration as read from its folder. */
export interface MigrationFile {
  /** The journal tag, e.g. `0001_add_orders`. */
  name: string;
  /** The journal's `when`, recorded as `created_at` once applied. */
  when: number;
  /** SHA-256 of the file's text, computed as drizzle-orm's migrator does so both record the same value. */
  hash: string;
  /** The statements, trimmed, in order, empty ones left out. */
  sql: string[];
}

/** Options of {@link generateMigration}. */
export interface GenerateMigrationOptions {
  /** The module exports that make up the schema (tables, enums, schemas, views), as passed to drizzle. */
  schema: Record<string, unknown>;
  /** The migrations folder; created when missing. A `file:` URL is accepted (`new URL('./migrations', import.meta.url)`). */
  dir: string | URL;
  /**
   * Words describing the change, turned into the file name (`'add orders'` → `0001_add_orders.sql`). Defaults to
   * `migration`.
   */
  name?: string;
}

/** A migration written by {@link generateMigration}. */
export interface GeneratedMigration {
  /** Absolute path of the new `.sql` file. */
  file: string;
  /** Its name (the journal tag), e.g. `0001_add_orders`. */
  name: string;
  /** The statements it holds, in order. */
  sql: string[];
}

/**
 * Turns a migrations folder given as a path or `file:` URL into an absolute path.
 *
 * @example
 * resolveMigrationsDir(new URL('./migrations', import.meta.url)); // '/srv/orders/src/migrations'
 */
export function resolveMigrationsDir(dir: string | URL): string {
  if (dir instanceof URL || dir.startsWith('file:')) return fileURLToPath(dir);
  return path.resolve(dir);
}

/**
 * Writes a new migration holding the difference between `schema` and the folder's latest snapshot, or does nothing and
 * returns null when they match. The folder gets the files drizzle-kit's `generate` would write (`NNNN_name.sql`,
 * `meta/NNNN_snapshot.json`, a new entry in `meta/_journal.json`), so drizzle-kit and drizzle-orm's migrator read it.
 *
 * @remarks The diff is drizzle-kit's own (`drizzle-kit/api`), loaded only when this runs: it is a development tool, and a
 * service in production never generates. When a table or column disappears while another appears, drizzle-kit asks
 * whether it is a rename; in a terminal it prompts, elsewhere it rejects with its "Interactive prompts require a TTY"
 * error and nothing is written. Review the SQL before committing it: a rename answered "no" drops data.
 * @example
 * const migration = await generateMigration({ schema, dir: new URL('./migrations', import.meta.url), name: 'add orders' });
 * if (migration) console.log(migration.file, migration.sql);
 */
export async function generateMigration(options: GenerateMigrationOptions): Promise<GeneratedMigration | null> {
  const dir = resolveMigrationsDir(options.dir);
  const suffix = migrationSuffix(options.name ?? 'migration');
  const kit = await loadClient(() => import('drizzle-kit/api'), 'drizzle-kit');
  const journal = (await readJournal(dir)) ?? { version: '7', dialect: 'postgresql', entries: [] };
  const last = journal.entries.at(-1);
  const previous = last === undefined ? kit.generateDrizzleJson({}) : await readSnapshot(dir, last.idx);
  const current = kit.generateDrizzleJson(options.schema, last === undefined ? undefined : previous.id);
  const statements = await kit.generateMigration(previous, current);
  if (statements.length === 0) return null;

  const idx = last === undefined ? 0 : last.idx + 1;
  const name = `${migrationPrefix(idx)}_${suffix}`;
  // The journal's `when` identifies a migration once applied, so two generated within one millisecond must still differ.
  const when = Math.max(Date.now(), (last?.when ?? 0) + 1);
  const file = path.join(dir, `${name}.sql`);
  await mkdir(path.join(dir, 'meta'), { recursive: true });
  await writeFile(snapshotPath(dir, idx), `${JSON.stringify(current, null, 2)}\n`);
  // Joined exactly as drizzle-kit joins them, so a file looks the same whichever tool wrote it.
  await writeFile(file, statements.join(`${STATEMENT_BREAKPOINT}\n`));
  journal.entries.push({ idx, version: current.version, when, tag: name, breakpoints: true });
  // The journal is what migrators read: it is written last, and replaced whole, so an interrupted run leaves at most
  // unreferenced files behind, never a journal naming a file that is not there.
  const journalFile = path.join(dir, 'meta', '_journal.json');
  const temporary = `${journalFile}.${randomUUID()}.tmp`;
  await writeFile(temporary, `${JSON.stringify(journal, null, 2)}\n`);
  await rename(temporary, journalFile);
  return { file, name, sql: statements.map((statement) => statement.trim()) };
}

/**
 * Reads every migration listed in a folder's journal, in order. A folder without `meta/_journal.json` (a service that
 * has not generated any yet) has none.
 *
 * @example
 * for (const migration of await readMigrations('./migrations')) console.log(migration.name);
 */
export async function readMigrations(dir: string | URL): Promise<MigrationFile[]> {
  const folder = resolveMigrationsDir(dir);
  const journal = await readJournal(folder);
  if (journal === null) return [];
  const migrations: MigrationFile[] = [];
  for (const entry of journal.entries) {
    const file = path.join(folder, `${entry.tag}.sql`);
    const text = await readFile(file, 'utf8').catch((error: unknown) => {
      throw invalidFolder(`The migrations journal lists ${entry.tag}, but ${file} cannot be read`, folder, error);
    });
    const parts = entry.breakpoints ? text.split(STATEMENT_BREAKPOINT) : [text];
    migrations.push({
      name: entry.tag,
      when: entry.when,
      hash: createHash('sha256').update(text).digest('hex'),
      sql: parts.map((part) => part.trim()).filter((part) => part !== ''),
    });
  }
  return migrations;
}

/** Reads `meta/_journal.json`, or returns null when the folder has none. */
async function readJournal(dir: string): Promise<MigrationJournal | null> {
  const file = path.join(dir, 'meta', '_journal.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw invalidFolder(`Cannot read ${file}`, dir, error);
  }
  const journal: unknown = parseJson(text, file, dir);
  if (!isJournal(journal)) throw invalidFolder(`${file} is not a drizzle migrations journal`, dir);
  return journal;
}

/** Reads the snapshot written with migration `idx`: the schema as it stood after that migration. */
async function readSnapshot(dir: string, idx: number): Promise<DrizzleSnapshotJSON> {
  const file = snapshotPath(dir, idx);
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw invalidFolder(`The migrations journal ends with migration ${idx}, but ${file} cannot be read`, dir, error);
  });
  const snapshot: unknown = parseJson(text, file, dir);
  if (!isRecord(snapshot) || typeof snapshot.id !== 'string' || typeof snapshot.version !== 'string') {
    throw invalidFolder(`${file} is not a drizzle-kit snapshot`, dir);
  }
  // Only the chain id is read here; drizzle-kit validates the whole snapshot against its own schema before diffing.
  return snapshot as DrizzleSnapshotJSON;
}

function parseJson(text: string, file: string, dir: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidFolder(`${file} is not valid JSON`, dir, error);
  }
}

function snapshotPath(dir: string, idx: number): string {
  return path.join(dir, 'meta', `${migrationPrefix(idx)}_snapshot.json`);
}

/** drizzle-kit's default ("index") prefix: the journal position on four digits. */
function migrationPrefix(idx: number): string {
  return String(idx).padStart(4, '0');
}

/** Makes a file-name-safe suffix of the words describing a change. */
function migrationSuffix(name: string): string {
  const suffix = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (suffix === '') {
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `A migration name needs a letter or a digit; got '${name}'`);
  }
  return suffix;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isJournal(value: unknown): value is MigrationJournal {
  if (!isRecord(value) || !Array.isArray(value.entries)) return false;
  return value.entries.every(
    (entry: unknown) =>
      isRecord(entry) &&
      typeof entry.idx === 'number' &&
      typeof entry.when === 'number' &&
      typeof entry.tag === 'string' &&
      typeof entry.breakpoints === 'boolean',
  );
}

/**
 * A migrations folder that cannot be used. It is reported as invalid configuration: the folder is something the
 * service declares and ships, like its config, and no retry will repair it.
 */
function invalidFolder(message: string, dir: string, cause?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_CONFIG_INVALID', message, { details: { migrations: dir }, cause });
}
