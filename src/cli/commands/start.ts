import { createHost } from '../../host/host.ts';
import { loadHostFile } from '../load-host.ts';

/** `gantry start [service…]`: runs the host file's services (or those named, by name or group) until a signal. */
export async function startCommand(services: string[], options: { host?: string }): Promise<void> {
  const definition = await loadHostFile(options.host);
  const host = createHost({ ...definition, only: services });
  await host.start();
  host.stopOnSignals();
  await host.listen();
}
