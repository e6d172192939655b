import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** `gantry dev [service…]`: runs `start` under tsx's watcher, restarting on every change of an imported file. */
export function devCommand(services: string[], options: { host?: string }): Promise<number> {
  const tsxCli = require.resolve('tsx/cli');
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const args = [
    tsxCli,
    'watch',
    '--clear-screen=false',
    main,
    'start',
    ...services,
    ...(options.host ? ['--host', options.host] : []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: 'inherit',
    env: { ...process.env, GANTRY_ENV: process.env.GANTRY_ENV ?? 'dev' },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
}
