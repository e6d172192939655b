import { randomUUID } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import type { RpcResponder, RpcTransport, RpcTransportOptions } from '../../calls/rpc-transport.ts';
import { rpcTimeout, rpcUnreachable } from '../../calls/rpc-transport.ts';
import { loadClient } from '../../db/load-client.ts';
import type { CheckResult } from '../bus.ts';
import { parseRedisStreamsUrl, type RedisConnectionTarget } from './options.ts';

/** Requests one responder handles at once before it stops popping more. */
const RESPONDER_CONCURRENCY = 64;
/** How long a blocking pop waits before it looks again (bounds how long `stop()` waits for a quiet subject). */
const BLOCK_SECONDS = 1;
/** How long a request list outlives its last push: lists of subjects nobody serves any more go away by themselves. */
const LIST_TTL_MS = 60_000;

interface RedisRequestEntry {
  id: string;
  replyTo: string;
  /** Epoch ms after which the caller has given up: a responder drops the request instead of running it. */
  expiresAt: number;
  body: string;
}

/**
 * Opens request/reply on the Redis server a `redis://` URL names (its `prefix` option is honoured; the bus's other
 * options are ignored here).
 *
 * @example
 * const rpc = await openRedisRpc(new URL('redis://127.0.0.1:6379'), { instanceId: 'orders-1' });
 */
export async function openRedisRpc(url: URL, options: RpcTransportOptions): Promise<RedisRpcTransport> {
  const { target, options: busOptions } = parseRedisStreamsUrl(url);
  const { Redis } = await loadClient(() => import('ioredis'), 'ioredis');
  return new RedisRpcTransport((role, extra) => new Redis(redisOptions(target, options.instanceId, role, extra)), {
    prefix: busOptions.prefix,
    instanceId: options.instanceId,
  });
}

/**
 * RPC on Redis: a request is pushed onto the list of its subject and popped (`BLPOP`) by exactly one responder; the
 * reply is published on the requester's own channel, which it subscribed to once. Requests left in a list after
 * their caller gave up are dropped when popped, never run late.
 */
export class RedisRpcTransport implements RpcTransport {
  readonly kind = 'redis';
  private readonly commands: Redis;
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  private readonly replyChannel: string;
  private readonly pending = new Map<string, { resolve: (body: string) => void }>();
  private readonly blocking = new Set<Redis>();

  private readonly connect: (role: string, extra?: RedisOptions) => Redis;
  private readonly names: { prefix: string; instanceId: string };

  constructor(connect: (role: string, extra?: RedisOptions) => Redis, names: { prefix: string; instanceId: string }) {
    this.connect = connect;
    this.names = names;
    this.commands = connect('rpc', { enableAutoPipelining: true, commandTimeout: 10_000 });
    this.commands.on('error', () => undefined);
    this.replyChannel = `${names.prefix}rpc:reply:${names.instanceId}:${randomUUID()}`;
  }

  async respond(subject: string, handle: (body: string) => Promise<string>): Promise<RpcResponder> {
    const reader = this.connect(`rpc-serve:${subject}`);
    reader.on('error', () => undefined);
    this.blocking.add(reader);
    const key = this.key(subject);
    const inFlight = new Set<Promise<void>>();
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        if (inFlight.size >= RESPONDER_CONCURRENCY) {
          await Promise.race(inFlight);
          continue;
        }
        let popped: [string, string] | null;
        try {
          popped = await reader.blpop(key, BLOCK_SECONDS);
        } catch {
          if (stopping) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
          continue;
        }
        if (!popped) continue;
        const entry = JSON.parse(popped[1]) as RedisRequestEntry;
        if (entry.expiresAt < Date.now()) continue;
        const work = handle(entry.body).then(
          (reply) =>
            this.commands.publish(entry.replyTo, JSON.stringify({ id: entry.id, body: reply })).then(() => undefined),
          () => undefined,
        );
        inFlight.add(work);
        void work.finally(() => inFlight.delete(work));
      }
    })();
    return {
      stop: async () => {
        stopping = true;
        // Ends the blocking pop at once rather than after its timeout.
        reader.disconnect();
        this.blocking.delete(reader);
        await loop;
        await Promise.all(inFlight);
      },
    };
  }

  async request(subject: string, body: string, timeoutMs: number): Promise<string> {
    await this.listen();
    const id = randomUUID();
    const entry: RedisRequestEntry = { id, replyTo: this.replyChannel, expiresAt: Date.now() + timeoutMs, body };
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(rpcTimeout(subject, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(reply);
        },
      });
      const key = this.key(subject);
      this.commands
        .multi()
        .rpush(key, JSON.stringify(entry))
        .pexpire(key, LIST_TTL_MS)
        .exec()
        .catch((error: unknown) => {
          clearTimeout(timer);
          this.pending.delete(id);
          reject(rpcUnreachable(subject, error));
        });
    });
  }

  async check(): Promise<CheckResult> {
    const status = this.commands.status;
    return status === 'ready' || status === 'connecting' || status === 'connect'
      ? { ok: true }
      : { ok: false, detail: `redis connection ${status}` };
  }

  async close(): Promise<void> {
    for (const reader of this.blocking) reader.disconnect();
    this.blocking.clear();
    await this.subscriber?.quit().catch(() => undefined);
    await this.commands.quit().catch(() => undefined);
  }

  /** Subscribes to this process's reply channel, once. */
  private listen(): Promise<void> {
    this.subscribed ??= (async () => {
      const subscriber = this.connect('rpc-replies');
      subscriber.on('error', () => undefined);
      subscriber.on('message', (_channel: string, message: string) => {
        const reply = JSON.parse(message) as { id: string; body: string };
        this.pending.get(reply.id)?.resolve(reply.body);
      });
      this.subscriber = subscriber;
      await subscriber.subscribe(this.replyChannel);
    })();
    return this.subscribed;
  }

  private key(subject: string): string {
    return `${this.names.prefix}rpc:${subject}`;
  }
}

function redisOptions(
  target: RedisConnectionTarget,
  instanceId: string,
  role: string,
  extra?: RedisOptions,
): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    tls: target.tls ? {} : undefined,
    protocol: 2,
    connectionName: `gantry:${instanceId}:${role}`.replace(/\s/g, '_'),
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    ...extra,
  };
}
