export { type MySqlClient, type MySqlRow, mysql } from './driver.ts';
