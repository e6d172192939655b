import { stringify } from 'yaml';
import { resolveEnv } from '../../config/env.ts';
import { HostConfigSchema } from '../../config/host-config.ts';
import { loadConfig } from '../../config/load.ts';
import { maskSecrets } from '../../config/mask.ts';
import { selectServices } from '../../host/select.ts';
import { loadHostFile } from '../load-host.ts';

/** `gantry config [service…]`: prints the resolved config of the current env, secrets masked. */
export async function configCommand(services: string[], options: { host?: string; json?: boolean }): Promise<void> {
  const definition = await loadHostFile(options.host);
  const chosen = selectServices(definition.services, services);
  const env = resolveEnv();
  const resolved = loadConfig(
    chosen.map((svc) => ({ name: svc.info.name, settings: svc.settingsSchema, drivers: Object.keys(svc.drivers) })),
    { env },
  );
  const masked = {
    env,
    files: resolved.files,
    host: maskSecrets(resolved.host, HostConfigSchema),
    services: Object.fromEntries(
      chosen.map((svc) => {
        const config = resolved.services[svc.info.name];
        return [
          svc.info.name,
          {
            settings: maskSecrets(config?.settings, svc.settingsSchema),
            drivers: maskSecrets(config?.drivers, undefined),
          },
        ];
      }),
    ),
  };
  process.stdout.write(options.json ? `${JSON.stringify(masked, null, 2)}\n` : stringify(masked));
}
