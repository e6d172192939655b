import { openRegistry } from '../../calls/registry.ts';
import { resolveEnv } from '../../config/env.ts';
import { loadConfig } from '../../config/load.ts';
import { maskUrl } from '../../config/mask.ts';
import { GantryError } from '../../errors/gantry-error.ts';

/**
 * `gantry services [service]`: the live instances in the registry of the current env (`host.calls.registry`,
 * `GANTRY_REGISTRY`), one line each (service, version, instance, address, age), or JSON with `--json`.
 */
export async function servicesCommand(service: string | undefined, options: { json?: boolean }): Promise<void> {
  const { host } = loadConfig([], { env: resolveEnv() });
  const url = host.calls.registry;
  if (!url) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      'no registry is configured: set host.calls.registry in config or GANTRY_REGISTRY (redis://, postgres://)',
    );
  }
  const registry = await openRegistry(url);
  try {
    const instances = await registry.list(service);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(instances, null, 2)}\n`);
      return;
    }
    if (instances.length === 0) {
      process.stdout.write(`no live instances${service ? ` of ${service}` : ''} in ${maskUrl(url)}\n`);
      return;
    }
    const rows = instances.map((i) => [
      i.service,
      i.version,
      i.instanceId,
      i.address,
      `${Math.max(0, Math.round((Date.now() - Date.parse(i.startedAt)) / 1000))}s`,
    ]);
    const header = ['SERVICE', 'VERSION', 'INSTANCE', 'ADDRESS', 'UP'];
    const widths = header.map((title, column) =>
      Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
    );
    for (const row of [header, ...rows]) {
      process.stdout.write(
        `${row
          .map((cell, column) => cell.padEnd(widths[column] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
      );
    }
  } finally {
    await registry.close();
  }
}
