import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors/gantry-error.ts';
import { secret, t } from '../schema/index.ts';
import { loadConfig } from './load.ts';
import { maskSecrets } from './mask.ts';

const Settings = t.Object({
  pageSize: t.Integer({ minimum: 1, default: 20 }),
  apiKey: secret(t.String({ minLength: 8 })),
  region: t.String(),
  limits: t.Object({ maxItems: t.Integer({ default: 5 }), strict: t.Boolean({ default: false }) }, { default: {} }),
});
const services = [{ name: 'order-book', settings: Settings, drivers: ['db'] }];

function project(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'gantry-config-'));
  mkdirSync(path.join(root, 'config'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(root, name), text);
  return root;
}

describe('config resolution', () => {
  it('layers defaults, default.yaml, <env>.yaml, .env and the environment, later winning', () => {
    const root = project({
      'config/default.yaml':
        'services:\n  order-book:\n    settings:\n      pageSize: 10\n      region: eu\n      apiKey: from-default-file\n',
      'config/dev.yaml':
        'host:\n  port: 9000\nservices:\n  order-book:\n    settings:\n      pageSize: 30\n    drivers:\n      db:\n        poolSize: 4\n',
      '.env': 'ORDER_BOOK__REGION=us\nORDER_BOOK__LIMITS__MAX_ITEMS=7\n',
    });
    const config = loadConfig(services, {
      env: 'dev',
      root,
      environment: { ORDER_BOOK__LIMITS__STRICT: 'true', PORT: '9100', ORDER_BOOK__DRIVERS__DB__URL: 'postgres://x/y' },
    });
    expect(config.host.port).toBe(9100);
    expect(config.services['order-book']?.settings).toEqual({
      pageSize: 30,
      region: 'us',
      apiKey: 'from-default-file',
      limits: { maxItems: 7, strict: true },
    });
    expect(config.services['order-book']?.drivers.db).toEqual({ poolSize: 4, url: 'postgres://x/y' });
    expect(config.files.map((f) => path.basename(f))).toEqual(['default.yaml', 'dev.yaml', '.env']);
  });

  it('ignores .env outside dev and test', () => {
    const root = project({ '.env': 'ORDER_BOOK__REGION=us\nORDER_BOOK__API_KEY=12345678\n' });
    expect(() => loadConfig(services, { env: 'prod', root, environment: {} })).toThrow(/region/);
  });

  it('lists every missing or invalid value in one error, with where to set each', () => {
    const root = project({});
    let caught: unknown;
    try {
      loadConfig(services, { env: 'prod', root, environment: { ORDER_BOOK__PAGE_SIZE: 'many', PORT: '99999' } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GantryError);
    const error = caught as GantryError;
    expect(error.code).toBe('GANTRY_ERR_CONFIG_INVALID');
    const keys = (error.details as { key: string }[]).map((p) => p.key).sort();
    expect(keys).toEqual([
      'host.port',
      'services.order-book.settings.apiKey',
      'services.order-book.settings.pageSize',
      'services.order-book.settings.region',
    ]);
    expect(error.message).toContain('env ORDER_BOOK__API_KEY');
    expect(error.message).toContain('env PORT');
    expect(error.message).toContain('config/prod.yaml');
  });

  it('reads a secret from the file its _FILE variable names, and never prints it in errors', () => {
    const root = project({});
    const secretFile = path.join(root, 'api-key');
    writeFileSync(secretFile, 'short\n');
    let message = '';
    try {
      loadConfig(services, {
        env: 'prod',
        root,
        environment: { ORDER_BOOK__API_KEY_FILE: secretFile, ORDER_BOOK__REGION: 'eu' },
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('services.order-book.settings.apiKey');
    expect(message).not.toContain('short');
    writeFileSync(secretFile, 'long-enough-secret\n');
    const config = loadConfig(services, {
      env: 'prod',
      root,
      environment: { ORDER_BOOK__API_KEY_FILE: secretFile, ORDER_BOOK__REGION: 'eu' },
    });
    expect(config.services['order-book']?.settings.apiKey).toBe('long-enough-secret');
  });

  it('masks secrets and URL passwords for printing', () => {
    const masked = maskSecrets(
      { apiKey: 'abcdefgh', region: 'eu', url: 'postgres://app:pw@db:5432/x' },
      Settings,
    ) as Record<string, unknown>;
    expect(masked).toEqual({ apiKey: '[secret]', region: 'eu', url: 'postgres://app:[secret]@db:5432/x' });
  });

  it('reports a config file that is not YAML', () => {
    const root = project({ 'config/default.yaml': 'services: [unclosed' });
    expect(() => loadConfig(services, { env: 'dev', root, environment: {} })).toThrow(/default.yaml is not valid YAML/);
  });
});
