import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

const root = new URL('../..', import.meta.url).pathname;

/** A `gantry` process started by a test. */
export interface GantryProcess {
  name: string;
  child: ChildProcess;
  output(): string;
}

/** A free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Runs `node bin/gantry.js <args>` to its end; rejects with its output when it fails. */
export function gantryOnce(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn(process.execPath, ['bin/gantry.js', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('exit', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`gantry ${args.join(' ')} exited ${code}:\n${output}`)),
    );
  });
}

/** Starts `gantry start <services>` on `env.PORT` and resolves once it answers `/health/live`. */
export async function startGantry(
  name: string,
  services: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<GantryProcess> {
  let output = '';
  const child = spawn(process.execPath, ['bin/gantry.js', 'start', ...services], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== undefined) throw new Error(`${name} exited with ${exited} before it was live:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not live within ${timeoutMs} ms:\n${output}`);
    }
    const live = await fetch(`http://127.0.0.1:${env.PORT}/health/live`).then(
      (r) => r.ok,
      () => false,
    );
    if (live) return { name, child, output: () => output };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** SIGKILLs a process and waits for it to be gone. */
export async function killHard(proc: GantryProcess): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGKILL');
  await exited;
}

/** Stops a process with SIGTERM, and SIGKILL after `graceMs`. */
export async function stopGently(proc: GantryProcess, graceMs = 15_000): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
