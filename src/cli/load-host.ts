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
  const loaded = (await importTypeScript(pathToFileURL(absolute).href)) as { default?: HostDefinition };
  if (!loaded.default || !Array.isArray(loaded.default.services)) {
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `${file} must export default defineHost({ services: [...] })`);
  }
  return loaded.default;
}

/**
 * Imports a module, under Node's own type stripping when it runs so; a file on the way that needs more than erasing
 * types (an enum, a namespace) makes tsx take over and the import is tried again. Node keeps no failed module, and
 * the modules already loaded stay as they are.
 */
async function importTypeScript(url: string): Promise<unknown> {
  try {
    return await import(url);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') throw error;
    const { register } = await import('tsx/esm/api');
    register();
    return import(url);
  }
}
