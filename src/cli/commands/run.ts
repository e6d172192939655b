import { createHost } from '../../host/host.ts';
import { loadHostFile } from '../load-host.ts';

/** `gantry run <service> <command> [--input JSON]`: runs an operator command of one service and prints its result. */
export async function runCommand(
  serviceName: string,
  commandName: string,
  options: { host?: string; input?: string },
): Promise<void> {
  const definition = await loadHostFile(options.host);
  const host = createHost({ ...definition, only: [serviceName], consumers: false });
  await host.start();
  try {
    const input: unknown = options.input === undefined ? undefined : JSON.parse(options.input);
    const result = await host.runCommand(serviceName, commandName, input);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await host.stop();
  }
}
