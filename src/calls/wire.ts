import type { WireError } from '../errors/gantry-error.ts';

/** The header carrying how many ms the caller has left; the receiving host caps the event's timeout with it. */
export const DEADLINE_HEADER = 'x-gantry-deadline';
/** The header naming the calling service (kept in the callee's tracking as `caller`). */
export const CALLER_HEADER = 'x-gantry-caller';

/**
 * What travels with every RPC request beside its input: the tracking ids, the caller, its remaining time and its
 * service token. The remaining time is relative (ms left when sent), so clocks of the two machines need not agree.
 */
export interface RpcMeta {
  requestId: string;
  traceparent: string;
  tracestate?: string;
  /** The calling service. */
  caller: string;
  /** Milliseconds the caller had left when it sent the request. */
  deadlineMs: number;
  /** The service token for the called service (see `signServiceToken`), when the host has a service secret. */
  token?: string;
}

/** An RPC request as it crosses the broker (JSON). */
export interface RpcRequestWire {
  /** The RPC's name within its service. */
  rpc: string;
  input: unknown;
  meta: RpcMeta;
}

/** An RPC reply as it crosses the broker (JSON): the output, or the handler's error in its wire form. */
export type RpcReplyWire = { ok: true; output: unknown } | { ok: false; error: WireError };

/** The broker subject (NATS), key suffix (Redis) or queue (RabbitMQ) the RPCs of one service are served on. */
export function rpcSubject(service: string, name: string): string {
  return `gantry.rpc.${service}.${name}`;
}

/** Reads the remaining-deadline header: a positive whole number of ms, or undefined when absent or malformed. */
export function parseDeadline(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}
