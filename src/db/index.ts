export type { DatabaseConnection, DrizzleDatabase } from './connection.ts';
export {
  DATABASE_URL_SCHEMES,
  type Database,
  type DatabaseDriver,
  type DatabaseKind,
  type DatabaseOptions,
  type DatabaseTarget,
  database,
  PENDING_MIGRATIONS_POLICIES,
  type PendingMigrationsPolicy,
  resolveDatabaseTarget,
} from './database.ts';
export {
  type GeneratedMigration,
  type GenerateMigrationOptions,
  generateMigration,
  type MigrationFile,
  type MigrationJournal,
  type MigrationJournalEntry,
  readMigrations,
  resolveMigrationsDir,
  STATEMENT_BREAKPOINT,
} from './migrations.ts';
export {
  MIGRATIONS_TABLE,
  type MigrationsTable,
  migrationsTableFor,
  type PendingMigration,
} from './migrator.ts';
