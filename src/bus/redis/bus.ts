import type { Redis, RedisOptions } from 'ioredis';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import type { Envelope } from '../envelope.ts';
import { redisEventJson, redisRetryKey, redisStreamKey } from './codec.ts';
import { RedisCommandDeadlines } from './deadlines.ts';
import { parseRedisStreamsUrl, type RedisConnectionTarget, type RedisStreamsOptions } from './options.ts';
import { RedisPublisher } from './publisher.ts';
import { RedisStreamsSubscription } from './subscription.ts';

/** The ioredis client class, as {@link createRedisStreamsBus} loads it. */
export type RedisClientClass = new (options: RedisOptions) => Redis;

/** What a {@link RedisStreamsBus} is built from. */
export interface RedisStreamsBusInit {
  /** The ioredis `Redis` class; passed in so that only choosing this bus loads ioredis. */
  Redis: RedisClientClass;
  target: RedisConnectionTarget;
  options: RedisStreamsOptions;
  /** Names this process's connections in `CLIENT LIST` (`gantry:<instanceId>:...`). */
  instanceId?: string;
}

const CHECK_TIMEOUT_MS = 2_000;
/** How many entries `stats()` counts itself when the server cannot tell a group's lag (after deletions in the stream). */
const LAG_COUNT_LIMIT = 10_000;

/**
 * The Redis Streams bus (`redis://` and `rediss://`): one stream per Gantry stream, one consumer group per Gantry
 * group, through ioredis. See docs/bus/redis.md for how each guarantee of {@link Bus} is met.
 *
 * - `publish` is `XADD <key> MAXLEN ~ <maxLen> * <fields>`; it resolves once the server has the entry (durable as
 *   far as the server's persistence settings make it: AOF with `appendfsync always` for no loss on a crash).
 * - `subscribe` creates the group at `$` with MKSTREAM when it does not exist yet (an existing group keeps its
 *   position), then reads with `XREADGROUP BLOCK` on a connection of its own, asking for no more entries than it has
 *   free slots. `attempt` is the server's delivery count.
 * - `ack` is XACK, batched: the acks of one I/O turn go out as one command.
 * - `retry(delay)` records the entry's due time in a sorted set per stream and group, leaving the entry pending;
 *   the group's consumers claim it back (XCLAIM, adding one to its delivery count) once due.
 * - A message left unsettled longer than `claimTimeoutMs` is claimed by another consumer's periodic XAUTOCLAIM sweep.
 *
 * While the server is unreachable, commands wait for the client to reconnect for up to `commandTimeoutMs`, then fail
 * with a retryable `GANTRY_ERR_BUS_UNAVAILABLE` (503). A publish that failed that way may still be stored once the
 * connection is back (its command stays queued), so a caller that publishes again can store the message twice: the
 * consumers' inbox deduplicates on the envelope id. Subscriptions reconnect by themselves and resume.
 *
 * @example
 * const bus = await createRedisStreamsBus(new URL('redis://127.0.0.1:6379?claimTimeoutMs=10000'), { instanceId: 'api-1' });
 */
export class RedisStreamsBus implements Bus {
  readonly kind = 'redis';
  readonly embedded = false;
  private readonly init: RedisStreamsBusInit;
  private readonly commands: Redis;
  /** The `commandTimeoutMs` bound of the commands connection's queries. */
  private readonly deadlines: RedisCommandDeadlines;
  /** The XADDs of each event-loop turn, as one pipeline on the commands connection. */
  private readonly publisher: RedisPublisher;
  /** Acks, claims and retries of every subscription, opened at the first subscribe (see {@link RedisStreamsBus.settler}). */
  private settles: Redis | undefined;
  private readonly subscriptions = new Set<RedisStreamsSubscription>();
  private closed = false;
  private lastError: Error | undefined;

  constructor(init: RedisStreamsBusInit) {
    this.init = init;
    this.commands = this.connect('commands');
    this.deadlines = new RedisCommandDeadlines(init.options.commandTimeoutMs);
    this.publisher = new RedisPublisher(
      this.commands,
      init.options.maxLen,
      init.options.commandTimeoutMs,
      (stream, error) => brokerError(`publish to '${stream}'`, error),
    );
  }

  /** The tuning in force, from the URL. */
  get options(): Readonly<RedisStreamsOptions> {
    return this.init.options;
  }

  publish(stream: string, envelope: Envelope): Promise<void> {
    if (this.closed) {
      return Promise.reject(new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot publish to ${stream}`));
    }
    let event: string;
    try {
      event = redisEventJson(envelope);
    } catch (error) {
      // `data` that JSON cannot write (a BigInt, a cycle): the promise rejects, as it did when publish was async.
      return Promise.reject(error);
    }
    const key = redisStreamKey(this.init.options.prefix, stream);
    return this.publisher.xadd(stream, key, event);
  }

  async subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    if (this.closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot subscribe to ${stream}`);
    const { prefix } = this.init.options;
    const streamKey = redisStreamKey(prefix, stream);
    try {
      // `$` only takes effect when the group is new: an existing group keeps its position, so a consumer that
      // restarts still gets what was published while it was away.
      await this.createGroup(streamKey, group, '$');
    } catch (error) {
      throw brokerError(`subscribe to '${stream}'`, error);
    }
    const subscription: RedisStreamsSubscription = new RedisStreamsSubscription({
      settler: this.settler(),
      reader: this.connect(`read:${stream}:${group}`),
      streamKey,
      retryKey: redisRetryKey(prefix, stream, group),
      group,
      consumer: options.consumerName,
      concurrency: Math.max(1, Math.floor(options.concurrency)),
      options: this.init.options,
      onDelivery,
      // Back from `0`: if the stream was deleted and written again, its new entries are all for this group.
      recreateGroup: () => this.createGroup(streamKey, group, '0'),
      onClosed: () => {
        this.subscriptions.delete(subscription);
      },
    });
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  /**
   * Lag of a group: `lag` (entries not yet delivered to the group) plus `pending` (delivered, not acked) from
   * `XINFO GROUPS`. When the server cannot tell the lag (entries were deleted from the middle of the stream), the
   * entries after the group's last delivered id are counted, up to 10,000.
   */
  async stats(stream: string, group?: string): Promise<StreamStats> {
    if (group === undefined) return { stream };
    const key = redisStreamKey(this.init.options.prefix, stream);
    let groups: unknown;
    try {
      groups = await this.deadlines.bound(this.commands.xinfo('GROUPS', key));
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return { stream, group, lag: 0 };
      throw brokerError(`stats of '${stream}'`, error);
    }
    for (const flat of groups as unknown[][]) {
      const info = pairs(flat);
      if (info.name !== group) continue;
      const pending = Number(info.pending ?? 0);
      if (typeof info.lag === 'number') return { stream, group, lag: info.lag + pending };
      const after = await this.deadlines.bound(
        this.commands.xrange(key, `(${String(info['last-delivered-id'])}`, '+', 'COUNT', LAG_COUNT_LIMIT),
      );
      return { stream, group, lag: after.length + pending };
    }
    return { stream, group, lag: 0 };
  }

  async check(): Promise<CheckResult> {
    if (this.closed) return { ok: false, detail: 'closed' };
    const { status } = this.commands;
    // Known to be down: say so at once. A connection still being opened gets the PING below, queued until it is up.
    if (status === 'reconnecting' || status === 'close' || status === 'end') {
      return { ok: false, detail: `redis connection ${status}${this.lastError ? `: ${this.lastError.message}` : ''}` };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.commands.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer to PING within ${CHECK_TIMEOUT_MS} ms`)),
            CHECK_TIMEOUT_MS,
          );
        }),
      ]);
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes the connections. Subscriptions still running are dropped without waiting for their handlers; their
   * unsettled messages stay pending and go to another consumer after the claim timeout. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Publishes of this turn go out before QUIT rather than after it, on a closed connection.
    this.publisher.flush();
    for (const subscription of [...this.subscriptions]) subscription.abort();
    await Promise.all([quit(this.commands), this.settles ? quit(this.settles) : undefined]);
  }

  /**
   * The connection of the consuming side. Publishes and acks on one connection would queue behind each other (Redis
   * answers a connection's commands in order): a producer pushing a burst would hold the consumers' acks, and with
   * them their slots. Opened on first use, so a bus that only publishes keeps one connection.
   */
  private settler(): Redis {
    this.settles ??= this.connect('settle');
    return this.settles;
  }

  private async createGroup(streamKey: string, group: string, start: '$' | '0'): Promise<void> {
    try {
      await this.deadlines.bound(this.commands.xgroup('CREATE', streamKey, group, start, 'MKSTREAM'));
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('BUSYGROUP')) return;
      throw error;
    }
  }

  private connect(role: string): Redis {
    const { target, options } = this.init;
    const base: RedisOptions = {
      host: target.host,
      port: target.port,
      db: target.db,
      username: target.username,
      password: target.password,
      tls: target.tls ? {} : undefined,
      // RESP2 replies have the same shape on every server version, which the reply parsing here relies on.
      protocol: 2,
      connectionName: `gantry:${this.init.instanceId ?? 'bus'}:${role}`.replace(/\s/g, '_'),
      // Commands wait for the reconnection rather than failing after a number of attempts; `commandTimeout` bounds
      // the wait of the shared connection, the blocking safety net that of the reader.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
    };
    // Auto-pipelining sends the commands of one event-loop turn (acks, claims) in one write. Publishes do not use it:
    // RedisPublisher pipelines them itself, with one timer per turn. The commands connection bounds its other commands
    // with RedisCommandDeadlines; the settle connection's commands are few (acks go out batched), so ioredis'
    // per-command timer is fine there.
    const client = new this.init.Redis(
      role === 'commands'
        ? { ...base, enableAutoPipelining: true }
        : role === 'settle'
          ? { ...base, enableAutoPipelining: true, commandTimeout: options.commandTimeoutMs }
          : // A generous client-side deadline on blocking reads, only to get out of a connection that died silently.
            { ...base, blockingTimeout: options.blockMs + 10_000, blockingTimeoutGrace: 5_000 },
    );
    client.on('error', (error: Error) => {
      this.lastError = error;
    });
    return client;
  }
}

/**
 * Opens a {@link RedisStreamsBus} for a `redis://` or `rediss://` URL, loading ioredis on first use. Used by
 * `resolveBus`; the URL's query string holds the options of {@link RedisStreamsOptions}.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when ioredis is not installed, `GANTRY_ERR_CONFIG_INVALID`
 *   for an unknown or malformed option.
 * @example
 * const bus = await createRedisStreamsBus(new URL('redis://127.0.0.1:6379/0?maxLen=100000'), { instanceId: 'worker-1' });
 */
export async function createRedisStreamsBus(url: URL, context: { instanceId?: string } = {}): Promise<RedisStreamsBus> {
  const { target, options } = parseRedisStreamsUrl(url);
  const { Redis } = await loadClient(() => import('ioredis'), 'ioredis');
  const init: RedisStreamsBusInit = { Redis, target, options };
  if (context.instanceId !== undefined) init.instanceId = context.instanceId;
  return new RedisStreamsBus(init);
}

/** Closes a connection, letting replies under way (acks) arrive first, for at most {@link CHECK_TIMEOUT_MS}. */
async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CHECK_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  client.disconnect();
}

/** A flat `[name, value, name, value...]` reply as an object. */
function pairs(flat: readonly unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

/**
 * The coded error for a failed command. An error answered by the server (wrong key type, ...) will not go away by
 * trying again; anything else (timeout while reconnecting, connection closed) is the server being unreachable.
 */
function brokerError(action: string, error: unknown): GantryError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === 'ReplyError') {
    return new GantryError('GANTRY_ERR_INTERNAL', `redis bus: ${action} failed: ${message}`, { cause: error });
  }
  return new GantryError(
    'GANTRY_ERR_BUS_UNAVAILABLE',
    `redis bus: ${action} failed, redis is unreachable: ${message}`,
    {
      cause: error,
    },
  );
}
