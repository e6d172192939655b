import { GantryError } from '../errors/gantry-error.ts';

/**
 * Loads a backend's client library, turning "module not found" for that package into a coded error that says what to
 * install. Client libraries are loaded this way, and only when their backend is opened, so a service on PostgreSQL never
 * loads PGlite (and the other way round).
 *
 * @param load Performs the dynamic `import()`; a function so the specifier stays a literal the compiler can type.
 * @param packageName The npm package the import needs, named in the error.
 * @example
 * const { PGlite } = await loadClient(() => import('@electric-sql/pglite'), '@electric-sql/pglite');
 */
export async function loadClient<T>(load: () => Promise<T>, packageName: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isMissingPackage(error, packageName)) {
      throw new GantryError(
        'GANTRY_ERR_DRIVER_MISSING_PACKAGE',
        `The package '${packageName}' is needed here but is not installed: run npm install ${packageName}`,
        { details: { package: packageName }, cause: error },
      );
    }
    throw error;
  }
}

/**
 * True when `error` says `packageName` itself cannot be found. A package that is present but fails to load (or misses
 * one of its own dependencies) is a different problem and keeps its original error.
 */
function isMissingPackage(error: unknown, packageName: string): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return error.message.includes(`'${packageName}'`) || error.message.includes(`"${packageName}"`);
}
