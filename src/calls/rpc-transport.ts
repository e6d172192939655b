/**
 * The request/reply contract that each broker's RPC transport (`src/bus/<name>/rpc.ts`) implements, and the errors
 * they raise. Kept apart from the transport registry in `rpc.ts`, which loads the transports: the transports import
 * this file only, so no import cycle runs through the registry.
 */
import type { CheckResult } from '../bus/bus.ts';
import { GantryError } from '../errors/gantry-error.ts';

/** A running responder: stops taking requests on `stop()`, after those in hand are answered. */
export interface RpcResponder {
  stop(): Promise<void>;
}

/**
 * Request/reply over a broker, with the broker's native mechanism: NATS request/reply with a queue group, RabbitMQ
 * direct reply-to, Redis lists popped by one responder and replies published to the requester's channel.
 *
 * Guarantees, the same on every transport:
 * - Each request reaches at most one responder of its subject, whichever instance is free (competing consumers).
 * - `request` settles within `timeoutMs`: with the reply, or with `GANTRY_ERR_CALL_TIMEOUT`, or sooner with
 *   `GANTRY_ERR_CALL_NO_INSTANCE` where the broker can tell that nobody serves the subject (NATS).
 * - A responder's handler never throws into the transport: errors are replies (see {@link RpcReplyWire}).
 *
 * @remarks Left out on purpose: durability (a request nobody takes before its deadline is dropped, not kept), retries
 * (the caller's policy decides) and payload validation (the runtime does it on both sides).
 */
export interface RpcTransport {
  /** The transport's name (`nats`, `amqp`, `redis`, `memory`). */
  readonly kind: string;
  /** Serves `subject`: `handle` gets each request's body and returns the reply's body. */
  respond(subject: string, handle: (body: string) => Promise<string>): Promise<RpcResponder>;
  /** Sends one request and resolves with the reply's body. */
  request(subject: string, body: string, timeoutMs: number): Promise<string>;
  check(): Promise<CheckResult>;
  /** Closes connections; responders must have been stopped first. */
  close(): Promise<void>;
}

/** Options every transport may read beyond its URL. */
export interface RpcTransportOptions {
  /** Names this process's connections on the broker. */
  instanceId: string;
}

/** The error of a request that got no reply in time. */
export function rpcTimeout(subject: string, timeoutMs: number): GantryError {
  return new GantryError('GANTRY_ERR_CALL_TIMEOUT', `${subject} did not answer within ${timeoutMs} ms`, {
    details: { subject, timeoutMs },
  });
}

/** The error of a request the transport could not deliver. */
export function rpcUnreachable(subject: string, cause: unknown): GantryError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new GantryError('GANTRY_ERR_CALL_UNREACHABLE', `cannot send the request on ${subject}: ${reason}`, { cause });
}
