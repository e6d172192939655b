export { type NodePostgresOpenOptions, openNodePostgres } from './driver.ts';
