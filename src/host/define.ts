import type { AnyService } from '../service/service.ts';
import type { HostPlugin } from './plugin.ts';

/** The project's host file (`gantry.config.ts`): what `gantry start` runs. */
export interface HostDefinition {
  services: readonly AnyService[];
  plugins?: readonly HostPlugin[];
  /** Title of the OpenAPI document. */
  title?: string;
  /** Where a browser asking for `/` is sent (a web app's page). */
  home?: string;
}

/**
 * Declares the services of a project for the `gantry` CLI.
 *
 * @example
 * // gantry.config.ts
 * export default defineHost({ services: [customers, notifier] });
 */
export function defineHost(definition: HostDefinition): HostDefinition {
  return definition;
}
