import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gantryOnce } from '../support/processes.ts';

const gantrySource = new URL('../../src/index.ts', import.meta.url).pathname;

// bin/gantry.js loads TypeScript through Node's type stripping where Node has it; files that need more than erasing
// types must still load, through tsx.
describe('gantry CLI on TypeScript host files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gantry-cli-ts-'));
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    await writeFile(
      path.join(dir, 'service.ts'),
      [
        `import { service } from '${gantrySource}';`,
        "enum Tier { Free = 'free', Paid = 'paid' }",
        "export const tiers = service({ name: 'tiers', version: '1.2.3' })",
        `  .get('/tiers/paid', {}, async () => ({ tier: Tier.Paid }));`,
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'enum-host.ts'),
      [
        `import { defineHost } from '${gantrySource}';`,
        "import { tiers } from './service.ts';",
        'export default defineHost({ services: [tiers] });',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'plain-host.ts'),
      [
        `import { defineHost, service } from '${gantrySource}';`,
        "const plain: string = 'plain';",
        "export default defineHost({ services: [service({ name: plain, version: '0.0.1' }).get('/plain', {}, async () => ({}))] });",
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a host file whose service uses an enum', async () => {
    const output = await gantryOnce(['--host', path.join(dir, 'enum-host.ts'), 'openapi'], {});
    const document = JSON.parse(output) as { info: { title: string; version: string }; paths: object };
    expect(document.info).toEqual({ title: 'tiers', version: '1.2.3' });
    expect(Object.keys(document.paths)).toEqual(['/tiers/paid']);
  });

  it('loads a host file that only needs its types erased', async () => {
    const output = await gantryOnce(['--host', path.join(dir, 'plain-host.ts'), 'openapi'], {});
    expect(Object.keys((JSON.parse(output) as { paths: object }).paths)).toEqual(['/plain']);
  });

  it('loads the enum host file with tsx registered up front (GANTRY_TSX=1)', async () => {
    const output = await gantryOnce(['--host', path.join(dir, 'enum-host.ts'), 'openapi'], { GANTRY_TSX: '1' });
    expect(Object.keys((JSON.parse(output) as { paths: object }).paths)).toEqual(['/tiers/paid']);
  });
});
