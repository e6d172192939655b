export { openPglite, type PgliteOpenOptions } from './driver.ts';
