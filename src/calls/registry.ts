import { GantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';

/** One live instance of a service, as it registered itself. */
export interface InstanceRecord {
  service: string;
  version: string;
  /** Unique per process and host (`<hostname>-<pid>-<random>`). */
  instanceId: string;
  /** The base URL other instances call it at. */
  address: string;
  /** Its events (`GET /customers/:id`, `rpc lookup`, `on customers.changed (audit)`). */
  events: string[];
  /** ISO time it started. */
  startedAt: string;
}

/**
 * Where instances announce themselves and are looked up. An entry lives `ttlMs` past its last `register`: an
 * instance renews it on every heartbeat, so one that died without deregistering drops out after `ttlMs`.
 *
 * Guarantees, the same on every backend:
 * - `list` returns only entries registered or renewed less than their `ttlMs` ago.
 * - `register` of an existing instance id replaces its entry and extends its life.
 * - `deregister` removes the entry at once; later `list` calls do not return it.
 *
 * @remarks Left out on purpose: health (an instance registered is assumed to serve; callers' breakers deal with
 * ones that do not), watches (callers poll, with a short cache), and anything beyond one flat namespace per backend
 * (a key or table prefix keeps systems apart).
 */
export interface Registry {
  /** The backend's name (`redis`, `postgres`, `memory`). */
  readonly kind: string;
  /** Adds or renews an entry, alive for `ttlMs`. */
  register(record: InstanceRecord, ttlMs: number): Promise<void>;
  deregister(service: string, instanceId: string): Promise<void>;
  /** The live entries of one service, or of every service. */
  list(service?: string): Promise<InstanceRecord[]>;
  close(): Promise<void>;
}

type RegistryFactory = (url: URL) => Promise<Registry>;

/** The registries by URL scheme; each loads its client only when chosen. */
const registries: Record<string, RegistryFactory> = {
  'memory:': async () => new MemoryRegistry(),
  'redis:': async (url) => (await import('./registry/redis.ts')).openRedisRegistry(url),
  'rediss:': async (url) => (await import('./registry/redis.ts')).openRedisRegistry(url),
  'postgres:': async (url) => (await import('./registry/postgres.ts')).openPostgresRegistry(url),
  'postgresql:': async (url) => (await import('./registry/postgres.ts')).openPostgresRegistry(url),
};

/** The URL schemes {@link openRegistry} accepts. */
export function registrySchemes(): string[] {
  return Object.keys(registries);
}

/** Opens the registry a URL names; an unknown scheme gets an error listing the valid ones. */
export async function openRegistry(url: string): Promise<Registry> {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const factory = parsed && registries[parsed.protocol];
  if (!parsed || !factory) {
    throw new GantryError(
      'GANTRY_ERR_CALL_UNKNOWN_TARGET',
      `registry URL scheme '${parsed?.protocol ?? url}' is not supported; use one of ${registrySchemes().join(', ')}`,
    );
  }
  return factory(parsed);
}

/** A registry in this process's memory: for a host whose services only call each other, and for tests. */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory';
  private readonly entries = new Map<string, { record: InstanceRecord; expiresAt: number }>();

  async register(record: InstanceRecord, ttlMs: number): Promise<void> {
    this.entries.set(`${record.service}/${record.instanceId}`, { record, expiresAt: Date.now() + ttlMs });
  }

  async deregister(service: string, instanceId: string): Promise<void> {
    this.entries.delete(`${service}/${instanceId}`);
  }

  async list(service?: string): Promise<InstanceRecord[]> {
    const now = Date.now();
    const live: InstanceRecord[] = [];
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
      else if (service === undefined || entry.record.service === service) live.push(entry.record);
    }
    return live;
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}

/**
 * Keeps this process's instances in a registry: registers them, renews them every `heartbeatMs`, and deregisters
 * them on `stop()`. A failed heartbeat is logged and tried again on the next beat.
 */
export class RegistryMembership {
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  private readonly registry: Registry;
  private readonly records: readonly InstanceRecord[];
  private readonly timing: { heartbeatMs: number; ttlMs: number };
  private readonly log: Logger;

  constructor(
    registry: Registry,
    records: readonly InstanceRecord[],
    timing: { heartbeatMs: number; ttlMs: number },
    log: Logger,
  ) {
    this.registry = registry;
    this.records = records;
    this.timing = timing;
    this.log = log;
  }

  /** Registers every record now, then keeps them alive. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.timing.heartbeatMs);
    this.timer.unref();
  }

  /** Stops the heartbeat and removes the records. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(
      this.records.map((r) =>
        this.registry
          .deregister(r.service, r.instanceId)
          .catch((error: unknown) => this.log.warn({ err: error, service: r.service }, 'could not deregister')),
      ),
    );
  }

  private async beat(): Promise<void> {
    try {
      await Promise.all(this.records.map((r) => this.registry.register(r, this.timing.ttlMs)));
      if (this.failing) this.log.info({ registry: this.registry.kind }, 'registry heartbeat recovered');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.log.warn({ err: error, registry: this.registry.kind }, 'registry heartbeat failed');
      this.failing = true;
    }
  }
}
