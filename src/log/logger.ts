import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';
import type { GantryEnv } from '../config/env.ts';

/** The structured logger handed to every handler: pino, bound to service, event and tracking ids. */
export type Logger = PinoLogger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  env: GantryEnv;
  /** pino level; defaults to `LOG_LEVEL` or `info`. */
  level?: string;
  /** Where lines go; defaults to stdout (pretty in dev, JSON elsewhere). Tests pass a stream to read lines back. */
  destination?: DestinationStream;
  /** Extra field paths to redact, beyond the built-in secrets. */
  redact?: string[];
  /** Force JSON or pretty output regardless of the environment. */
  pretty?: boolean;
  /**
   * Secret values to replace wherever they appear in a line (an error message quoting a token, settings logged
   * whole), beyond the redacted paths. Known at start from the config (`secretValues`).
   */
  scrub?: readonly string[];
}

/** Field paths never written in clear: credentials in headers and the usual secret-bearing keys. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  'req.headers["x-gantry-service-token"]',
  'headers["x-gantry-service-token"]',
  'headers["proxy-authorization"]',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.authorization',
  'password',
  'token',
  'secret',
];

/**
 * Creates the host's root logger. JSON lines in prod (and whenever output is not a terminal in CI), readable lines in
 * dev; secrets redacted in both.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const redact = { paths: [...REDACTED_PATHS, ...(options.redact ?? [])], censor: '[secret]' };
  const base = { env: options.env };
  const hooks = scrubber(options.scrub);
  if (options.destination) return pino({ level, redact, base, ...hooks }, options.destination);
  const pretty = options.pretty ?? (options.env === 'dev' && process.stdout.isTTY === true);
  if (pretty) {
    return pino({
      level,
      redact,
      base,
      ...hooks,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,env' } },
    });
  }
  return pino({ level, redact, base, ...hooks });
}

/** A pino hook replacing secret values in each written line (as JSON-escaped text, as they appear in it). */
function scrubber(secrets: readonly string[] | undefined): { hooks?: { streamWrite: (line: string) => string } } {
  if (!secrets || secrets.length === 0) return {};
  const escaped = secrets.map((secret) =>
    JSON.stringify(secret)
      .slice(1, -1)
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
  );
  const pattern = new RegExp(escaped.join('|'), 'g');
  return { hooks: { streamWrite: (line) => line.replace(pattern, '[secret]') } };
}
