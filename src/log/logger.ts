import { type DestinationStream, type Logger as PinoLogger, pino, symbols } from 'pino';
import type { GantryEnv } from '../config/env.ts';
import { stdoutDestination } from './turn-batched-destination.ts';

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
  if (options.destination) return skipPrimitives(pino({ level, redact, base, ...hooks }, options.destination));
  const pretty = options.pretty ?? (options.env === 'dev' && process.stdout.isTTY === true);
  if (pretty) {
    return skipPrimitives(
      pino({
        level,
        redact,
        base,
        ...hooks,
        transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,env' } },
      }),
    );
  }
  // Not pino's default destination: see TurnBatchedDestination for why.
  return skipPrimitives(pino({ level, redact, base, ...hooks }, stdoutDestination()));
}

type Stringifier = (value: unknown, safe?: unknown) => string | undefined;

/**
 * Lets strings, numbers and booleans skip the redaction of paths that start with a wildcard (`*.password`).
 *
 * pino runs every field of every line and of every child's bindings through that redactor, whatever its type; for a
 * primitive it cannot censor anything (a path needs an object to walk into) but still walks each path: about 3 µs of
 * each request's 2 lines and 6 bindings, the largest cost of the HTTP path. Objects still go through it unchanged, and
 * top-level paths (`password`) have their own stringifier, which this leaves alone. Children share the parent's
 * table, so patching the root covers them.
 */
function skipPrimitives(logger: Logger): Logger {
  const table = (logger as unknown as Record<symbol, Record<symbol, Stringifier | undefined> | undefined>)[
    symbols.stringifiersSym
  ];
  const wildcard = table?.[symbols.wildcardFirstSym];
  if (table === undefined || wildcard === undefined) return logger;
  // What the redactor returns for a primitive is its serializer's output, JSON.stringify of the value. Numbers reach
  // here finite (pino turns the others into null first), so their JSON is their decimal form. Two named parameters
  // rather than a rest parameter: this runs for every field of every line, and a rest array is an allocation each.
  table[symbols.wildcardFirstSym] = (value, safe) => {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value);
      case 'number':
        return String(value);
      case 'boolean':
        return value ? 'true' : 'false';
      default:
        return wildcard(value, safe);
    }
  };
  return logger;
}

/** A pino hook replacing secret values in each written line (as JSON-escaped text, as they appear in it). */
function scrubber(secrets: readonly string[] | undefined): { hooks?: { streamWrite: (line: string) => string } } {
  if (!secrets || secrets.length === 0) return {};
  // Each secret as it appears in a JSON line (escaped), and the alternation of them all for the replacement.
  const needles = secrets.map((secret) => JSON.stringify(secret).slice(1, -1));
  const pattern = new RegExp(needles.map((needle) => needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  // Almost no line holds a secret: a plain substring search per secret costs a fraction of running the alternation
  // over every line, so the replacement only runs on the lines that need it.
  return {
    hooks: {
      streamWrite: (line) => {
        for (const needle of needles) if (line.includes(needle)) return line.replace(pattern, '[secret]');
        return line;
      },
    },
  };
}
