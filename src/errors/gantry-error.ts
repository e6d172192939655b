import { type ErrorCode, errorCodes } from './codes.ts';

/** What an error looks like when it crosses the wire (RPC replies, dead letters). */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  details?: unknown;
  origin?: string;
}

/** Options of a {@link GantryError}. */
export interface GantryErrorOptions {
  /** Overrides the status of the code (a handler's 404 or 409 uses the generic HTTP codes). */
  status?: number;
  details?: unknown;
  cause?: unknown;
  retryable?: boolean;
}

/**
 * The one error type Gantry raises. It carries a stable `code`, the HTTP `status` it maps to, whether a retry may
 * succeed, and optional structured `details` (for validation errors: every failing field).
 *
 * @example
 * throw new GantryError('GANTRY_ERR_HTTP_NOT_FOUND', `customer ${id} not found`);
 */
export class GantryError extends Error {
  override readonly name = 'GantryError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: GantryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = errorCodes[code];
    this.code = code;
    this.status = options.status ?? entry.status;
    this.retryable = options.retryable ?? entry.retryable;
    this.details = options.details;
  }

  /** The plain form of this error for messages and replies. */
  toWire(origin?: string): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details !== undefined) wire.details = this.details;
    if (origin !== undefined) wire.origin = origin;
    return wire;
  }

  /** Rebuilds an error from its wire form; an unknown code becomes an internal error that keeps the original. */
  static fromWire(wire: WireError): GantryError {
    const known = wire.code in errorCodes;
    const code = (known ? wire.code : 'GANTRY_ERR_INTERNAL') as ErrorCode;
    return new GantryError(code, wire.message, {
      retryable: wire.retryable,
      details: wire.details,
      cause: known ? undefined : wire,
    });
  }
}

/** True when `value` is a {@link GantryError}. */
export function isGantryError(value: unknown): value is GantryError {
  return value instanceof GantryError;
}

/** Wraps anything thrown into a {@link GantryError}, keeping the original as `cause`. */
export function toGantryError(value: unknown): GantryError {
  if (value instanceof GantryError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new GantryError('GANTRY_ERR_INTERNAL', message, { cause: value });
}
