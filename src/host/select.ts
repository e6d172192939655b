import { GantryError } from '../errors/gantry-error.ts';
import type { AnyService } from '../service/service.ts';

/**
 * The services to run: all, or those whose name or group is in `only`. Refuses two services of one name, and names
 * in `only` that match nothing (listing the known names and groups).
 */
export function selectServices(services: readonly AnyService[], only: readonly string[] | undefined): AnyService[] {
  const names = new Set<string>();
  for (const svc of services) {
    if (names.has(svc.info.name))
      throw new GantryError('GANTRY_ERR_SERVICE_DEFINITION', `two services are named '${svc.info.name}'`);
    names.add(svc.info.name);
  }
  if (!only || only.length === 0) return [...services];
  const unknown = only.filter((want) => !services.some((svc) => svc.info.name === want || svc.groups.includes(want)));
  if (unknown.length > 0) {
    const known = [...names, ...new Set(services.flatMap((s) => s.groups))];
    throw new GantryError(
      'GANTRY_ERR_SERVICE_DEFINITION',
      `no service or group named ${unknown.join(', ')}; known: ${known.join(', ')}`,
    );
  }
  return services.filter((svc) => only.some((want) => svc.info.name === want || svc.groups.includes(want)));
}
