import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { RpcResponder, RpcTransport, RpcTransportOptions } from '../../calls/rpc-transport.ts';
import { rpcTimeout, rpcUnreachable } from '../../calls/rpc-transport.ts';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { CheckResult } from '../bus.ts';
import { parseNatsUrl } from './options.ts';

/** Every responder of one subject joins this queue group, so each request reaches one of them. */
const QUEUE_GROUP = 'gantry-rpc';

/**
 * Opens request/reply on the NATS server a `nats://` URL names, on a core NATS connection of its own (no JetStream:
 * requests are not stored). The URL's `prefix` is put before every subject.
 *
 * @example
 * const rpc = await openNatsRpc(new URL('nats://127.0.0.1:4222'), { instanceId: 'orders-1' });
 */
export async function openNatsRpc(url: URL, options: RpcTransportOptions): Promise<NatsRpcTransport> {
  const settings = parseNatsUrl(url, `${options.instanceId}-rpc`);
  const nats = await loadClient(() => import('@nats-io/transport-node'), '@nats-io/transport-node');
  try {
    const nc = await nats.connect({
      servers: settings.servers,
      name: settings.connectionName,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      noAsyncTraces: true,
      ...(settings.user !== undefined ? { user: settings.user, pass: settings.pass } : {}),
      ...(settings.token !== undefined ? { token: settings.token } : {}),
    });
    return new NatsRpcTransport(nc, settings.prefix);
  } catch (error) {
    throw new GantryError('GANTRY_ERR_CALL_UNREACHABLE', `cannot connect to NATS at ${settings.servers.join(', ')}`, {
      cause: error,
    });
  }
}

/**
 * RPC on core NATS: responders subscribe in one queue group (the server hands each request to one member), callers
 * use the client's request with its muxed reply inbox. With nobody subscribed the server answers "no responders" at
 * once, which becomes `GANTRY_ERR_CALL_NO_INSTANCE` without waiting for the timeout.
 */
export class NatsRpcTransport implements RpcTransport {
  readonly kind = 'nats';
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  private readonly nc: NatsConnection;
  private readonly prefix: string;

  constructor(nc: NatsConnection, prefix: string) {
    this.nc = nc;
    this.prefix = prefix;
  }

  async respond(subject: string, handle: (body: string) => Promise<string>): Promise<RpcResponder> {
    const inFlight = new Set<Promise<void>>();
    const sub: Subscription = this.nc.subscribe(this.subject(subject), {
      queue: QUEUE_GROUP,
      callback: (error, msg) => {
        if (error || !msg.reply) return;
        const work = handle(this.decoder.decode(msg.data)).then(
          (reply) => {
            msg.respond(this.encoder.encode(reply));
          },
          () => undefined,
        );
        inFlight.add(work);
        void work.finally(() => inFlight.delete(work));
      },
    });
    // Waits until the server has the subscription, so a request sent right after start is not "no responders".
    await this.nc.flush();
    return {
      stop: async () => {
        await sub.drain().catch(() => undefined);
        await Promise.all(inFlight);
      },
    };
  }

  async request(subject: string, body: string, timeoutMs: number): Promise<string> {
    const full = this.subject(subject);
    try {
      const reply = await this.nc.request(full, this.encoder.encode(body), { timeout: Math.max(1, timeoutMs) });
      return this.decoder.decode(reply.data);
    } catch (error) {
      throw this.failure(full, timeoutMs, error);
    }
  }

  async check(): Promise<CheckResult> {
    return this.nc.isClosed() ? { ok: false, detail: 'nats connection closed' } : { ok: true };
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }

  private subject(subject: string): string {
    return this.prefix === 'gantry' ? subject : `${this.prefix}.${subject}`;
  }

  private failure(subject: string, timeoutMs: number, error: unknown): GantryError {
    const named = error as { name?: string; isNoResponders?: () => boolean; cause?: { name?: string } };
    if (named.isNoResponders?.() || named.cause?.name === 'NoRespondersError') {
      return new GantryError('GANTRY_ERR_CALL_NO_INSTANCE', `no instance serves ${subject}`, { cause: error });
    }
    if (named.name === 'TimeoutError' || named.cause?.name === 'TimeoutError') return rpcTimeout(subject, timeoutMs);
    return rpcUnreachable(subject, error);
  }
}
