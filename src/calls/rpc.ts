import type { CheckResult } from '../bus/bus.ts';
import { GantryError } from '../errors/gantry-error.ts';
import {
  type RpcResponder,
  type RpcTransport,
  type RpcTransportOptions,
  rpcTimeout,
  rpcUnreachable,
} from './rpc-transport.ts';

export { type RpcResponder, type RpcTransport, type RpcTransportOptions, rpcTimeout, rpcUnreachable };

type RpcFactory = (url: URL, options: RpcTransportOptions) => Promise<RpcTransport>;

/**
 * The transports by URL scheme, each loading its client only when chosen. Schemes of brokers without request/reply
 * (PostgreSQL, Kafka) are absent: a host on them serves RPC in-process (`memory:`) or names a transport in
 * `GANTRY_RPC`.
 */
const transports: Record<string, RpcFactory> = {
  'memory:': async () => new MemoryRpcTransport(),
  'nats:': async (url, options) => (await import('../bus/nats/rpc.ts')).openNatsRpc(url, options),
  'redis:': async (url, options) => (await import('../bus/redis/rpc.ts')).openRedisRpc(url, options),
  'rediss:': async (url, options) => (await import('../bus/redis/rpc.ts')).openRedisRpc(url, options),
  'amqp:': async (url, options) => (await import('../bus/amqp/rpc.ts')).openAmqpRpc(url, options),
  'amqps:': async (url, options) => (await import('../bus/amqp/rpc.ts')).openAmqpRpc(url, options),
};

/** The URL schemes {@link openRpcTransport} accepts. */
export function rpcSchemes(): string[] {
  return Object.keys(transports);
}

/** True when a bus URL's broker has request/reply, so RPC can ride on it. */
export function hasRpc(url: string): boolean {
  return rpcSchemes().some((scheme) => url.startsWith(scheme));
}

/** Opens the RPC transport a URL names; an unsupported scheme gets an error listing the valid ones. */
export async function openRpcTransport(url: string, options: RpcTransportOptions): Promise<RpcTransport> {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const factory = parsed && transports[parsed.protocol];
  if (!parsed || !factory) {
    throw new GantryError(
      'GANTRY_ERR_CALL_UNSUPPORTED',
      `RPC cannot travel over '${parsed?.protocol ?? url}'; set GANTRY_RPC to one of ${rpcSchemes().join(', ')}`,
    );
  }
  return factory(parsed, options);
}

/**
 * Request/reply inside one process: what a host on an embedded bus uses, so services hosted together call each
 * other's RPCs with no broker. Owned by its host (no globals): two hosts never reach each other through it.
 */
export class MemoryRpcTransport implements RpcTransport {
  readonly kind = 'memory';
  private readonly handlers = new Map<string, ((body: string) => Promise<string>)[]>();
  private readonly turn = new Map<string, number>();

  async respond(subject: string, handle: (body: string) => Promise<string>): Promise<RpcResponder> {
    const list = this.handlers.get(subject) ?? [];
    list.push(handle);
    this.handlers.set(subject, list);
    return {
      stop: async () => {
        const current = this.handlers.get(subject) ?? [];
        this.handlers.set(
          subject,
          current.filter((h) => h !== handle),
        );
      },
    };
  }

  request(subject: string, body: string, timeoutMs: number): Promise<string> {
    const list = this.handlers.get(subject) ?? [];
    if (list.length === 0) {
      return Promise.reject(new GantryError('GANTRY_ERR_CALL_NO_INSTANCE', `no responder serves ${subject}`));
    }
    const index = (this.turn.get(subject) ?? 0) % list.length;
    this.turn.set(subject, index + 1);
    const handle = list[index] as (body: string) => Promise<string>;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new GantryError('GANTRY_ERR_CALL_TIMEOUT', `${subject} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      handle(body).then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async check(): Promise<CheckResult> {
    return { ok: true, detail: 'in-process' };
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
