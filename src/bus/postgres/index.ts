export { isConnectionError, PostgresLogBus, type PostgresLogBusOptions } from './bus.ts';
export {
  type PgliteBusClientOptions,
  type PgPoolBusClientOptions,
  type PostgresBusClient,
  type PostgresQueryable,
  pgliteBusClient,
  pgPoolBusClient,
} from './client.ts';
export { BUS_PLANNER_SETTINGS, type OpenPostgresBusOptions, openPgliteBus, openPostgresBus } from './open.ts';
export {
  DEFAULT_BUS_SCHEMA,
  type ParsedPostgresBusUrl,
  type PostgresBusOptions,
  parsePostgresBusUrl,
  postgresBusOptions,
} from './options.ts';
export {
  type BusStatements,
  busSchemaSql,
  busStatements,
  type PostgresStatement,
  postgresPublishStatement,
} from './schema.ts';
