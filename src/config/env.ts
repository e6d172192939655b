import { GantryError } from '../errors/gantry-error.ts';

/** The environments a host runs in; each may have its own `config/<env>.yaml`. */
export const GANTRY_ENVS = ['dev', 'test', 'qa', 'prod'] as const;

/** One of {@link GANTRY_ENVS}. */
export type GantryEnv = (typeof GANTRY_ENVS)[number];

/** Reads `GANTRY_ENV` (default `dev`), refusing anything not in the list. */
export function resolveEnv(value: string | undefined = process.env.GANTRY_ENV): GantryEnv {
  if (value === undefined || value === '') return 'dev';
  if ((GANTRY_ENVS as readonly string[]).includes(value)) return value as GantryEnv;
  throw new GantryError(
    'GANTRY_ERR_CONFIG_INVALID',
    `GANTRY_ENV must be one of ${GANTRY_ENVS.join(', ')}; got '${value}'`,
  );
}
