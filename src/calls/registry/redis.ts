import type { Redis } from 'ioredis';
import { parseRedisStreamsUrl } from '../../bus/redis/options.ts';
import { loadClient } from '../../db/load-client.ts';
import type { InstanceRecord, Registry } from '../registry.ts';

/**
 * Opens the registry on the Redis server a `redis://` URL names; `?prefix=` keeps systems apart (default `gantry:`).
 *
 * @example
 * const registry = await openRedisRegistry(new URL('redis://127.0.0.1:6379'));
 */
export async function openRedisRegistry(url: URL): Promise<RedisRegistry> {
  const { target, options } = parseRedisStreamsUrl(url);
  const { Redis } = await loadClient(() => import('ioredis'), 'ioredis');
  const client = new Redis({
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    tls: target.tls ? {} : undefined,
    connectionName: 'gantry:registry',
    maxRetriesPerRequest: 2,
    commandTimeout: 2_000,
    lazyConnect: false,
  });
  client.on('error', () => undefined);
  return new RedisRegistry(client, options.prefix);
}

/**
 * The registry on Redis: one key per instance (`<prefix>registry:<service>:<instance id>`) holding its record as
 * JSON, set with a TTL (`SET ... PX`) that every heartbeat renews, so Redis itself drops instances that stop beating.
 * `list` scans the service's keys and reads them in one `MGET`.
 */
export class RedisRegistry implements Registry {
  readonly kind = 'redis';

  private readonly client: Redis;
  private readonly prefix: string;

  constructor(client: Redis, prefix: string) {
    this.client = client;
    this.prefix = prefix;
  }

  async register(record: InstanceRecord, ttlMs: number): Promise<void> {
    await this.client.set(this.key(record.service, record.instanceId), JSON.stringify(record), 'PX', ttlMs);
  }

  async deregister(service: string, instanceId: string): Promise<void> {
    await this.client.del(this.key(service, instanceId));
  }

  async list(service?: string): Promise<InstanceRecord[]> {
    const pattern = `${this.prefix}registry:${service === undefined ? '*' : `${escapeGlob(service)}:*`}`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.client.mget(...keys);
    return values.flatMap((value) => (value === null ? [] : [JSON.parse(value) as InstanceRecord]));
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => undefined);
  }

  private key(service: string, instanceId: string): string {
    return `${this.prefix}registry:${service}:${instanceId}`;
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
