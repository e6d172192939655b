import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { GantryError } from '../errors/gantry-error.ts';
import { isSecretSchema } from '../schema/index.ts';
import { validatorFor } from '../schema/validate.ts';
import type { GantryEnv } from './env.ts';
import { type HostConfig, HostConfigSchema } from './host-config.ts';

/** What one service needs from config: its settings schema and its driver names. */
export interface ConfigurableService {
  name: string;
  settings: TSchema | undefined;
  drivers: readonly string[];
}

/** Where config comes from. */
export interface ConfigSources {
  env: GantryEnv;
  /** The folder holding `config/` and `.env`; defaults to the working directory. */
  root?: string;
  /** The process environment; defaults to `process.env`. */
  environment?: Readonly<Record<string, string | undefined>>;
  /** Values that win over every other source (tests). Same shape as the config files. */
  overrides?: ConfigTree;
}

/** The shape of the config files: `host:` and `services: { <name>: { settings, drivers } }`. */
export interface ConfigTree {
  host?: Record<string, unknown>;
  services?: Record<string, { settings?: Record<string, unknown>; drivers?: Record<string, Record<string, unknown>> }>;
}

/** The resolved config of one service. */
export interface ServiceConfig {
  settings: Record<string, unknown>;
  drivers: Record<string, Record<string, unknown>>;
}

/** The resolved, validated config of a host and its services. */
export interface ResolvedConfig {
  env: GantryEnv;
  host: HostConfig;
  services: Record<string, ServiceConfig>;
  /** The files that were read, in order. */
  files: string[];
}

/** One problem found while resolving config, with where its value can be set. */
export interface ConfigProblem {
  key: string;
  message: string;
  setIn: string[];
}

type Tree = Record<string, unknown>;

/**
 * Resolves config from, later winning: schema defaults, `config/default.yaml`, `config/<env>.yaml`, `.env` (dev and
 * test only), the process environment, then `overrides`. Validates the host and every service; throws one
 * `GANTRY_ERR_CONFIG_INVALID` listing every problem and where each value can be set.
 */
export function loadConfig(services: readonly ConfigurableService[], sources: ConfigSources): ResolvedConfig {
  const root = sources.root ?? process.cwd();
  const environment = sources.environment ?? process.env;
  const files: string[] = [];
  const fileTrees: Tree[] = [];
  for (const name of ['default', sources.env]) {
    const file = path.join(root, 'config', `${name}.yaml`);
    const tree = readYaml(file);
    if (tree) {
      files.push(file);
      fileTrees.push(tree);
    }
  }
  const dotenv = sources.env === 'dev' || sources.env === 'test' ? readDotenv(path.join(root, '.env')) : {};
  if (Object.keys(dotenv).length > 0) files.push(path.join(root, '.env'));
  // Variables from .env lose to the real environment.
  const vars: Record<string, string | undefined> = { ...dotenv, ...environment };

  const problems: ConfigProblem[] = [];
  const fromFiles = (pathInTree: string[]): Tree =>
    fileTrees.reduce<Tree>((merged, tree) => deepMerge(merged, asTree(getIn(tree, pathInTree))), {});

  const hostRaw = deepMerge(
    deepMerge(fromFiles(['host']), envForSchema(HostConfigSchema, vars, null, problems, 'host')),
    asTree(sources.overrides?.host),
  );
  const host = settle<HostConfig>(HostConfigSchema, hostRaw, 'host', sources.env, problems, null);

  const resolved: Record<string, ServiceConfig> = {};
  for (const svc of services) {
    const prefix = `${envName(svc.name)}__`;
    const settingsSchema = svc.settings ?? { type: 'object', properties: {} };
    const key = `services.${svc.name}.settings`;
    const raw = deepMerge(
      deepMerge(
        fromFiles(['services', svc.name, 'settings']),
        envForSchema(settingsSchema, vars, prefix, problems, key),
      ),
      asTree(sources.overrides?.services?.[svc.name]?.settings),
    );
    const settings = settle<Record<string, unknown>>(settingsSchema, raw, key, sources.env, problems, prefix);
    const drivers: Record<string, Record<string, unknown>> = {};
    for (const alias of svc.drivers) {
      const fromEnv: Tree = {};
      const driverPrefix = `${prefix}DRIVERS__${envName(alias)}__`;
      for (const [name, value] of Object.entries(vars)) {
        if (value !== undefined && name.startsWith(driverPrefix))
          fromEnv[camel(name.slice(driverPrefix.length))] = value;
      }
      drivers[alias] = deepMerge(
        deepMerge(fromFiles(['services', svc.name, 'drivers', alias]), fromEnv),
        asTree(sources.overrides?.services?.[svc.name]?.drivers?.[alias]),
      );
    }
    resolved[svc.name] = { settings, drivers };
  }

  if (problems.length > 0) {
    const lines = problems.map((p) => `  - ${p.key}: ${p.message} (set it in ${p.setIn.join(' or ')})`);
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `configuration for env '${sources.env}' has ${problems.length} problem(s):\n${lines.join('\n')}`,
      { details: problems },
    );
  }
  return { env: sources.env, host, services: resolved, files };
}

/** Applies defaults, converts strings from the environment to their schema types, then validates. */
function settle<T>(
  schema: TSchema,
  raw: Tree,
  key: string,
  env: GantryEnv,
  problems: ConfigProblem[],
  prefix: string | null,
): T {
  const withDefaults = Value.Default(schema, structuredClone(raw)) as Tree;
  const converted = Value.Convert(schema, withDefaults) as Tree;
  const validator = validatorFor<T>(schema);
  if (!validator.check(converted)) {
    for (const problem of validator.problems(converted)) {
      const segments = problem.path.split('/').filter(Boolean);
      const field = segments.length > 0 ? `${key}.${segments.join('.')}` : key;
      const fieldSchema = schemaAt(schema, segments);
      const secret = isSecretSchema(fieldSchema);
      const shown = secret ? problem.message.replace(/'[^']*'/g, "'[secret]'") : problem.message;
      problems.push({ key: field, message: shown, setIn: whereToSet(field, segments, env, prefix, fieldSchema) });
    }
  }
  return converted as T;
}

function whereToSet(
  field: string,
  segments: string[],
  env: GantryEnv,
  prefix: string | null,
  schema: TSchema | undefined,
): string[] {
  const places = [`config/${env}.yaml or config/default.yaml at ${field}`];
  const explicit = (schema as Record<string, unknown> | undefined)?.['x-gantry-env'];
  if (typeof explicit === 'string') places.push(`env ${explicit}`);
  else if (prefix !== null) places.push(`env ${prefix}${segments.map(envName).join('__')}`);
  return places;
}

/** Reads the variables that map to a schema's properties: `PREFIX` + `SEGMENT__SEGMENT`, or `x-gantry-env` names. */
function envForSchema(
  schema: TSchema,
  vars: Readonly<Record<string, string | undefined>>,
  prefix: string | null,
  problems: ConfigProblem[],
  key: string,
): Tree {
  const out: Tree = {};
  const walk = (node: TSchema, at: string[], target: Tree): void => {
    const properties = (node as { properties?: Record<string, TSchema> }).properties ?? {};
    for (const [prop, child] of Object.entries(properties)) {
      const explicit = (child as Record<string, unknown>)['x-gantry-env'];
      const name =
        typeof explicit === 'string'
          ? explicit
          : prefix !== null
            ? `${prefix}${[...at, prop].map(envName).join('__')}`
            : null;
      if ((child as { type?: string }).type === 'object' && typeof explicit !== 'string') {
        const nested: Tree = {};
        walk(child, [...at, prop], nested);
        if (Object.keys(nested).length > 0) target[prop] = nested;
      }
      if (name === null) continue;
      const value = readVar(name, vars, problems, `${key}.${[...at, prop].join('.')}`);
      if (value !== undefined) target[prop] = parseStructured(child, value);
    }
  };
  walk(schema, [], out);
  return out;
}

/** A variable's value, or the contents of the file its `_FILE` twin names (Docker and Kubernetes secrets). */
function readVar(
  name: string,
  vars: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
  key: string,
): string | undefined {
  const direct = vars[name];
  if (direct !== undefined) return direct;
  const file = vars[`${name}_FILE`];
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    problems.push({
      key,
      message: `cannot read ${name}_FILE (${(error as Error).message})`,
      setIn: [`env ${name}_FILE`],
    });
    return undefined;
  }
}

function parseStructured(schema: TSchema, value: string): unknown {
  const type = (schema as { type?: string }).type;
  if ((type === 'object' || type === 'array') && /^\s*[[{]/.test(value)) {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

function schemaAt(schema: TSchema, segments: string[]): TSchema | undefined {
  let node: TSchema | undefined = schema;
  for (const segment of segments) {
    node = (node as { properties?: Record<string, TSchema> } | undefined)?.properties?.[segment];
  }
  return node;
}

function readYaml(file: string): Tree | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    return asTree(parseYaml(text));
  } catch (error) {
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `${file} is not valid YAML: ${(error as Error).message}`);
  }
}

function readDotenv(file: string): Record<string, string> {
  try {
    return parseDotenv(readFileSync(file));
  } catch {
    return {};
  }
}

/** `pageSize` → `PAGE_SIZE`, `my-service` → `MY_SERVICE`. */
export function envName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

function camel(name: string): string {
  return name.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function asTree(value: unknown): Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Tree) : {};
}

function getIn(tree: Tree, at: string[]): unknown {
  let node: unknown = tree;
  for (const key of at) node = asTree(node)[key];
  return node;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    const bothTrees =
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current);
    out[key] = bothTrees ? deepMerge(current as Tree, value as Tree) : value;
  }
  return out;
}
