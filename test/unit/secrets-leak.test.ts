import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashApiKey } from 'gantry/auth';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const HOST_FILE = 'test/fixtures/secrets-host.ts';

/** A value that cannot occur by chance in any output. */
const plant = (what: string) => `planted${what}${randomBytes(12).toString('hex')}`;

const secrets = {
  setting: plant('Setting'),
  authorization: plant('Bearer'),
  dbPassword: plant('DbPassword'),
  apiKey: plant('ApiKey'),
  wrongApiKey: plant('WrongKey'),
  jwtSecret: plant('JwtSecret'),
  serviceSecret: plant('ServiceSecret'),
};

const dir = mkdtempSync(path.join(tmpdir(), 'gantry-secrets-'));
const tokenFile = path.join(dir, 'api-token');
writeFileSync(tokenFile, `${secrets.setting}\n`);

const environment: Record<string, string> = {
  GANTRY_ENV: 'prod',
  GANTRY_ALLOW_EMBEDDED: 'true',
  // The secret setting is read from a file, as Docker and Kubernetes secrets are.
  VAULT__API_TOKEN_FILE: tokenFile,
  DATABASE_URL: `postgres://app:${secrets.dbPassword}@127.0.0.1:5432/app`,
  GANTRY_API_KEYS: JSON.stringify([{ id: 'ops', hash: hashApiKey(secrets.apiKey) }]),
  GANTRY_JWT_SECRET: secrets.jwtSecret,
  GANTRY_JWT_ALGORITHMS: 'HS256',
  GANTRY_JWT_ISSUER: 'https://id.example.test/',
  GANTRY_JWT_AUDIENCE: 'vault',
  GANTRY_SERVICE_SECRET: secrets.serviceSecret,
  LOG_LEVEL: 'debug',
};

function gantry(args: string[], env: Record<string, string>) {
  let output = '';
  const child = spawn(process.execPath, ['bin/gantry.js', ...args, '--host', HOST_FILE], {
    cwd: root,
    env: { ...process.env, ...environment, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function send(port: number, pathname: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: pathname, headers, agent: false }, (res) => {
      let text = JSON.stringify(res.headers);
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every planted secret found in `text`, with the line it is on. */
function leaks(text: string, where: string): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    for (const line of text.split('\n'))
      if (line.includes(value)) found.push(`${name} in ${where}: ${line.slice(0, 400)}`);
  }
  return found;
}

describe('planted secrets', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never appear in the logs, answers or config output of a running process', { timeout: 120_000 }, async () => {
    const port = 23_000 + Math.floor(Math.random() * 2_000);
    // Both processes boot at once: each spends seconds compiling the sources.
    const config = gantry(['config'], {});
    const running = gantry(['start'], { PORT: String(port) });
    try {
      await waitFor(() => /listening/.test(running.output()), `the host to listen:\n${running.output()}`);
      const answers = {
        root: await send(port, '/'),
        openapi: await send(port, '/openapi.json'),
        ready: await send(port, '/health/ready'),
        status: await send(port, '/vault/status', {
          'x-api-key': secrets.apiKey,
          authorization: `Bearer ${secrets.authorization}`,
        }),
        wrongKey: await send(port, '/vault/status', { 'x-api-key': secrets.wrongApiKey }),
        echo: await send(port, '/vault/echo', {
          authorization: `Bearer ${secrets.authorization}`,
          cookie: `session=${secrets.authorization}`,
          'x-api-key': secrets.apiKey,
        }),
        boom: await send(port, '/vault/boom'),
        badToken: await send(port, '/vault/status', { authorization: `Bearer ${secrets.authorization}` }),
      };
      // The planted values were in force: the key opened the door, the setting was read from its file.
      expect(answers.status.status).toBe(200);
      expect(answers.status.text).toContain(`"tokenLength":${secrets.setting.length}`);
      expect(answers.wrongKey.status).toBe(401);
      expect(answers.boom.status).toBe(500);
      expect(answers.ready.status).toBe(200);
      expect(Object.entries(answers).flatMap(([name, answer]) => leaks(answer.text, `the answer of ${name}`))).toEqual(
        [],
      );
    } finally {
      running.child.kill('SIGTERM');
      await running.exited;
    }
    const output = running.output();
    expect(output).toContain('status asked');
    expect(output).toContain('upstream refused token');
    expect(leaks(output, 'the logs')).toEqual([]);

    expect(await config.exited).toBe(0);
    expect(config.output()).toContain('apiToken: "[secret]"');
    expect(config.output()).toContain('databaseUrl: postgres://app:[secret]@127.0.0.1:5432/app');
    expect(leaks(config.output(), 'gantry config')).toEqual([]);
  });
});
