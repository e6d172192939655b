export { jobTablesSql } from './schema.ts';
export { PostgresJobStore, type PostgresJobStoreOptions } from './store.ts';
