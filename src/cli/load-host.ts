import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GantryError } from '../errors/gantry-error.ts';
import type { HostDefinition } from '../host/define.ts';

/** The host file the CLI reads when none is named. */
export const DEFAULT_HOST_FILE = 'gantry.config.ts';

/** Imports the project's host file and returns its default export. */
export async function loadHostFile(file: string = DEFAULT_HOST_FILE): Promise<HostDefinition> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `no host file at ${absolute}; create ${DEFAULT_HOST_FILE} exporting defineHost({ services: [...] }) or pass --host <file>`,
    );
  }
  const loaded = (await import(pathToFileURL(absolute).href)) as { default?: HostDefinition };
  if (!loaded.default || !Array.isArray(loaded.default.services)) {
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `${file} must export default defineHost({ services: [...] })`);
  }
  return loaded.default;
}
