import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  exports: Record<string, string>;
  bin: Record<string, string>;
};

describe('the package surface', () => {
  it('points every export and bin at a file that exists', () => {
    for (const [entry, target] of [...Object.entries(pkg.exports), ...Object.entries(pkg.bin)]) {
      expect(existsSync(new URL(target, root)), `${entry} → ${target}`).toBe(true);
    }
  });

  it('names its exports one by one (no export * barrels)', () => {
    for (const target of Object.values(pkg.exports)) {
      if (!target.endsWith('.ts')) continue;
      expect(readFileSync(new URL(target, root), 'utf8'), target).not.toMatch(/export \* from/);
    }
  });

  it('loads each entry point', async () => {
    for (const target of Object.values(pkg.exports)) {
      if (!target.endsWith('.ts')) continue;
      const module = (await import(new URL(target, root).href)) as Record<string, unknown>;
      expect(Object.keys(module).length, target).toBeGreaterThan(0);
    }
  });
});
