import { createHost } from '../../host/host.ts';
import { loadHostFile } from '../load-host.ts';

/** `gantry start [service…]`: runs the host file's services (or those named, by name or group) until a signal. */
export async function startCommand(services: string[], options: { host?: string }): Promise<void> {
  const definition = await loadHostFile(options.host);
  const host = createHost({ ...definition, only: services });
  // Node exits (code 13) when the event loop empties while start still awaits a promise that nothing can settle any
  // more (a client that dropped its connection without rejecting). Say so plainly and exit 1 instead.
  const stalled = (): void => {
    process.stderr.write(
      'gantry: start stalled: a start step awaited something that can no longer happen (no connection or timer left); exiting\n',
    );
    process.exit(1);
  };
  process.once('beforeExit', stalled);
  try {
    await host.start();
  } finally {
    process.off('beforeExit', stalled);
  }
  host.stopOnSignals();
  await host.listen();
}
