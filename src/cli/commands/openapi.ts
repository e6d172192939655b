import { writeFile } from 'node:fs/promises';
import { selectServices } from '../../host/select.ts';
import { buildOpenApi } from '../../http/openapi.ts';
import { loadHostFile } from '../load-host.ts';

/** `gantry openapi [--out file]`: prints (or writes) the OpenAPI document of the host file's services. */
export async function openapiCommand(services: string[], options: { host?: string; out?: string }): Promise<void> {
  const definition = await loadHostFile(options.host);
  const chosen = selectServices(definition.services, services);
  const document = buildOpenApi(chosen, {
    title: definition.title ?? chosen.map((s) => s.info.name).join(' + '),
    version:
      chosen
        .map((s) => s.info.version)
        .sort()
        .at(-1) ?? '0.0.0',
  });
  const text = `${JSON.stringify(document, null, 2)}\n`;
  if (options.out) await writeFile(options.out, text);
  else process.stdout.write(text);
}
