import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import { encodeMessage } from '../codec.ts';
import type { Envelope } from '../envelope.ts';
import type { BusResolveOptions } from '../resolve.ts';
import { toNatsHeaders } from './codec.ts';
import { type NatsJetStreamOptions, type NatsNames, natsDurableName, natsNames, parseNatsUrl } from './options.ts';
import { NatsPublisher } from './publisher.ts';
import { NatsPullSubscription } from './pull.ts';

/** The client libraries the bus runs on, loaded when it is opened so that other buses never load them. */
export interface NatsClientModules {
  nats: typeof import('@nats-io/transport-node');
  jetstream: typeof import('@nats-io/jetstream');
}

/** An open connection and its JetStream contexts, as {@link openNatsJetStreamBus} hands them to the bus. */
export interface NatsJetStreamConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  modules: NatsClientModules;
}

/** The longest one publish request waits for its acknowledgement before it is sent again. */
const PUBLISH_ATTEMPT_MS = 5_000;
/** How long `stop()` and `close()` wait for outgoing acks to reach the server when the connection is down. */
const FLUSH_WAIT_MS = 5_000;

/**
 * Opens the NATS JetStream bus a `nats://` URL names (options: see {@link parseNatsUrl}). The client connects once
 * and then reconnects by itself, forever, when the server goes away.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when `@nats-io/transport-node` or `@nats-io/jetstream` is
 *   not installed; `GANTRY_ERR_BUS_UNAVAILABLE` when the server cannot be reached or has no JetStream.
 * @example
 * const bus = await openNatsJetStreamBus(new URL('nats://127.0.0.1:4222?claimTimeoutMs=10000'), { instanceId: 'orders-1' });
 */
export async function openNatsJetStreamBus(url: URL, options: BusResolveOptions): Promise<NatsJetStreamBus> {
  const settings = parseNatsUrl(url, options.instanceId);
  const nats = await loadClient(() => import('@nats-io/transport-node'), '@nats-io/transport-node');
  const jetstream = await loadClient(() => import('@nats-io/jetstream'), '@nats-io/jetstream');
  let nc: NatsConnection;
  try {
    nc = await nats.connect({
      servers: settings.servers,
      name: settings.connectionName,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // The client would build two Error objects per request (every publish) for their stack traces: a third of the
      // CPU of a busy producer. Publish failures are reported with their stream and cause instead.
      noAsyncTraces: true,
      ...(settings.user !== undefined ? { user: settings.user, pass: settings.pass } : {}),
      ...(settings.token !== undefined ? { token: settings.token } : {}),
    });
  } catch (error) {
    throw unavailable(`cannot connect to NATS at ${settings.servers.join(', ')}: ${messageOf(error)}`, error);
  }
  const jsm = await jetstream.jetstreamManager(nc, { timeout: PUBLISH_ATTEMPT_MS }).catch(async (error: unknown) => {
    await nc.close();
    throw unavailable(`NATS at ${settings.servers.join(', ')} has no JetStream: ${messageOf(error)}`, error);
  });
  const js = jetstream.jetstream(nc, { timeout: PUBLISH_ATTEMPT_MS });
  return new NatsJetStreamBus({ nc, js, jsm, modules: { nats, jetstream } }, settings);
}

/**
 * The bus on NATS JetStream. Each Gantry stream is one JetStream stream holding one subject (`<prefix>.<stream>`),
 * created on first use; each group is a durable pull consumer with explicit acks, created at its first subscribe with
 * deliver policy `new`. Messages travel in CloudEvents binary mode: attributes as `ce-*` headers, data as the body.
 *
 * Guarantees, and how:
 * - `publish` resolves once the stream's leader has stored the message (the JetStream publish ack). The envelope id
 *   is sent as `Nats-Msg-Id`, so a publish repeated within the duplicate window (a retry, after a lost ack) is stored
 *   once. When the connection is lost, `publish` retries by itself until `publishTimeoutMs`; only then does it
 *   fail, with `GANTRY_ERR_BUS_UNAVAILABLE` (retryable). A caller that retries after that keeps the same envelope.
 * - `attempt` is the server's delivery count; `retry(delay)` is a NAK with that delay, so the server redelivers no
 *   sooner; a delivery left unsettled is redelivered by the server after `claimTimeoutMs` (the consumer's `ack_wait`).
 * - A subscription asks the server for at most `concurrency` messages minus those in hand (pull requests sized to
 *   the free slots), so it never holds more than `concurrency` messages.
 * - `ack()` is sent without waiting for the server's confirmation (as JetStream clients do by default); `stop()`
 *   flushes the connection before it resolves. An ack lost with the connection means one more delivery.
 *
 * @remarks Order: one stream keeps publish order, and a group delivers in order while a single consumer with
 * concurrency 1 handles it; redeliveries (retry, claim timeout) and several consumers interleave. JetStream has no
 * per-key partitioning, so the envelope `subject` (key) does not route messages.
 */
export class NatsJetStreamBus implements Bus {
  readonly kind = 'nats';
  readonly embedded = false;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly modules: NatsClientModules;
  private readonly options: NatsJetStreamOptions;
  /**
   * Streams by JetStream name: `true` once known to exist, else the pending creation (or lookup). Made once per
   * process, again after a loss.
   */
  private readonly streamsReady = new Map<string, Promise<void> | true>();
  private readonly pulls = new Set<NatsPullSubscription>();
  private readonly names = new Map<string, NatsNames>();
  private readonly publisher: NatsPublisher;
  private closed = false;
  private connected = true;

  /** Wraps an open connection; {@link openNatsJetStreamBus} opens one from a URL and is the usual way in. */
  constructor(connection: NatsJetStreamConnection, options: NatsJetStreamOptions) {
    this.nc = connection.nc;
    this.js = connection.js;
    this.jsm = connection.jsm;
    this.modules = connection.modules;
    this.options = options;
    const { nats, jetstream } = connection.modules;
    this.publisher = new NatsPublisher(this.nc, nats.createInbox(), {
      timeout: nats.errors.TimeoutError,
      noResponders: nats.errors.NoRespondersError,
      api: jetstream.JetStreamApiError,
      closed: nats.errors.ClosedConnectionError,
    });
    void this.watchConnection();
  }

  async publish(stream: string, envelope: Envelope): Promise<void> {
    this.assertOpen(stream);
    const names = this.namesOf(stream);
    const wire = encodeMessage(envelope);
    const deadline = Date.now() + this.options.publishTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        // Only a stream not yet known to exist costs a wait (an await of a settled promise is a turn of its own).
        const creating = this.ensureStream(names);
        if (creating !== undefined) await creating;
        await this.publisher.publish(
          names.subject,
          wire.body,
          toNatsHeaders(wire, envelope.id, this.modules.nats.MsgHdrsImpl),
          Math.max(1_000, Math.min(PUBLISH_ATTEMPT_MS, deadline - Date.now())),
        );
        return;
      } catch (error) {
        if (this.closed || isConnectionClosed(error)) throw closedError(stream, error);
        if (!isTransient(error)) {
          throw new GantryError('GANTRY_ERR_INTERNAL', `NATS refused the message for ${stream}: ${messageOf(error)}`, {
            cause: error,
          });
        }
        // No responders means no stream took the subject: deleted behind our back, or JetStream still recovering.
        if (isNoResponders(error)) this.streamsReady.delete(names.stream);
        const wait = Math.min(2_000, 100 * 2 ** attempt);
        if (Date.now() + wait >= deadline) {
          throw unavailable(
            `NATS did not store the message for ${stream} within ${this.options.publishTimeoutMs} ms: ${messageOf(error)}`,
            error,
          );
        }
        await sleep(wait);
      }
    }
  }

  async subscribe(
    stream: string,
    group: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    this.assertOpen(stream);
    const names = this.namesOf(stream);
    const durable = natsDurableName(group);
    try {
      await this.ensureConsumer(names, durable);
    } catch (error) {
      if (error instanceof GantryError) throw error;
      if (this.closed || isConnectionClosed(error)) throw closedError(stream, error);
      const message = `cannot subscribe group ${group} to ${stream} on NATS: ${messageOf(error)}`;
      throw isTransient(error)
        ? unavailable(message, error)
        : new GantryError('GANTRY_ERR_INTERNAL', message, { cause: error });
    }
    const pull = new NatsPullSubscription(
      {
        nc: this.nc,
        isPulling: () => this.connected && !this.closed,
        // A subscription recovering from a failure checks the stream too: it may be the stream that went away.
        ensureConsumer: () => {
          this.streamsReady.delete(names.stream);
          return this.ensureConsumer(names, durable);
        },
        flush: () => this.flush(),
        release: (done) => this.pulls.delete(done),
      },
      {
        nextSubject: `${this.js.apiPrefix}.CONSUMER.MSG.NEXT.${names.stream}.${durable}`,
        inbox: this.modules.nats.createInbox(),
        concurrency: Math.max(1, Math.floor(options.concurrency)),
        onDelivery,
        nanos: this.modules.nats.nanos,
      },
    );
    this.pulls.add(pull);
    pull.start();
    return { stop: () => pull.stop() };
  }

  /** Lag is the consumer's `num_pending` (not yet delivered) plus `num_ack_pending` (delivered, not yet acked). */
  async stats(stream: string, group?: string): Promise<StreamStats> {
    if (group === undefined) return { stream };
    const names = this.namesOf(stream);
    try {
      const info = await this.jsm.consumers.info(names.stream, natsDurableName(group));
      return { stream, group, lag: info.num_pending + info.num_ack_pending };
    } catch (error) {
      if (isNotFound(error)) return { stream, group, lag: 0 };
      throw error;
    }
  }

  /** Asks JetStream for the account's usage: proves the connection and that JetStream answers. */
  async check(): Promise<CheckResult> {
    if (this.closed) return { ok: false, detail: 'closed' };
    if (!this.connected) return { ok: false, detail: `reconnecting to ${this.options.servers.join(', ')}` };
    try {
      const info = await this.jsm.getAccountInfo();
      return { ok: true, detail: `${info.streams} JetStream stream(s) on ${this.nc.getServer()}` };
    } catch (error) {
      return { ok: false, detail: messageOf(error) };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const pull of this.pulls) void pull.abandon();
    this.pulls.clear();
    // Drain sends what is buffered (acks among it); when the server is away it would wait for it, so it is bounded.
    const drained = this.nc.drain().then(
      () => true,
      () => false,
    );
    if (!(await Promise.race([drained, sleep(FLUSH_WAIT_MS).then(() => false)]))) await this.nc.close();
    // Acks that came in while draining are settled; what is still waiting has lost its connection.
    this.publisher.close();
  }

  /**
   * Finds or creates the group's durable consumer (and its stream), making its `ack_wait` the configured claim
   * timeout. A group is created at its first subscribe with deliver policy `new`: it gets what is published from then.
   */
  private async ensureConsumer(names: NatsNames, durable: string): Promise<void> {
    await this.ensureStream(names);
    const ackWait = this.modules.nats.nanos(this.options.claimTimeoutMs);
    try {
      const { config } = await this.jsm.consumers.info(names.stream, durable);
      if (config.ack_wait !== ackWait) {
        await this.jsm.consumers.update(names.stream, durable, { ack_wait: ackWait });
      }
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const { AckPolicy, DeliverPolicy, ReplayPolicy } = this.modules.jetstream;
    try {
      await this.jsm.consumers.add(names.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWait,
        deliver_policy: DeliverPolicy.New,
        replay_policy: ReplayPolicy.Instant,
        // The consumer runner decides when to give up (dead letter), so the server never does.
        max_deliver: -1,
      });
    } catch (error) {
      // Another process subscribing at the same moment created it first; theirs is as good as ours.
      const code = apiCode(error);
      if (code !== CONSUMER_EXISTS && code !== CONSUMER_NAME_IN_USE) throw error;
    }
  }

  /** Flushes the connection so that acks sent without confirmation reach the server; bounded while disconnected. */
  private async flush(): Promise<void> {
    if (this.nc.isClosed()) return;
    await Promise.race([this.nc.flush().catch(() => undefined), sleep(FLUSH_WAIT_MS)]);
  }

  /** The JetStream names of a stream, worked out once per stream: publish asks for them every time. */
  private namesOf(stream: string): NatsNames {
    let names = this.names.get(stream);
    if (names === undefined) {
      names = natsNames(this.options.prefix, stream);
      this.names.set(stream, names);
    }
    return names;
  }

  private assertOpen(stream: string): void {
    if (this.closed) throw closedError(stream);
  }

  /** Makes sure the stream exists: `undefined` when it is known to, else the creation (or lookup) to wait for. */
  private ensureStream(names: NatsNames): Promise<void> | undefined {
    const ready = this.streamsReady.get(names.stream);
    if (ready === true) return undefined;
    if (ready !== undefined) return ready;
    const created = this.createStream(names);
    this.streamsReady.set(names.stream, created);
    // A failure is not remembered: the next publish or subscribe tries again. A success is, unless forgotten since.
    created.then(
      () => {
        if (this.streamsReady.get(names.stream) === created) this.streamsReady.set(names.stream, true);
      },
      () => {
        if (this.streamsReady.get(names.stream) === created) this.streamsReady.delete(names.stream);
      },
    );
    return created;
  }

  private async createStream(names: NatsNames): Promise<void> {
    try {
      await this.verifyStream(names);
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const { DiscardPolicy, RetentionPolicy, StorageType } = this.modules.jetstream;
    const { nanos } = this.modules.nats;
    try {
      await this.jsm.streams.add({
        name: names.stream,
        subjects: [names.subject],
        retention: this.options.retention === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits,
        storage: this.options.storage === 'memory' ? StorageType.Memory : StorageType.File,
        num_replicas: this.options.replicas,
        max_age: nanos(this.options.maxAgeMs),
        duplicate_window: nanos(this.options.duplicateWindowMs),
        discard: DiscardPolicy.Old,
      });
    } catch (error) {
      // Another process created it first, maybe with settings of its own: use it as it is.
      if (apiCode(error) === STREAM_NAME_IN_USE) return this.verifyStream(names);
      if (apiCode(error) === SUBJECTS_OVERLAP) {
        throw new GantryError(
          'GANTRY_ERR_CONFIG_INVALID',
          `another JetStream stream already takes subject '${names.subject}'; choose another prefix in the bus URL`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Checks that an existing stream of our name carries our subject (a foreign stream of that name would not). */
  private async verifyStream(names: NatsNames): Promise<void> {
    const info = await this.jsm.streams.info(names.stream);
    if (!(info.config.subjects ?? []).includes(names.subject)) {
      throw new GantryError(
        'GANTRY_ERR_CONFIG_INVALID',
        `JetStream stream '${names.stream}' exists but does not carry subject '${names.subject}'; choose another prefix in the bus URL`,
      );
    }
  }

  /** Follows the connection: pulls die with it, and are sent again once it is back. */
  private async watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        for (const pull of this.pulls) pull.connectionLost();
      } else if (status.type === 'reconnect') {
        this.connected = true;
        // The server may be a new one, or have restarted without a stream (memory storage): check them again.
        this.streamsReady.clear();
        for (const pull of this.pulls) pull.pump();
      }
    }
  }
}

const STREAM_NAME_IN_USE = 10058;
const SUBJECTS_OVERLAP = 10065;
const CONSUMER_EXISTS = 10148;
const CONSUMER_NAME_IN_USE = 10013;

function apiCode(error: unknown): number | undefined {
  return error instanceof Error && error.name.endsWith('ApiError')
    ? (error as Error & { code: number }).code
    : undefined;
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && (error.name === 'StreamNotFoundError' || error.name === 'ConsumerNotFoundError');
}

function isNoResponders(error: unknown): boolean {
  return error instanceof Error && (error.name === 'JetStreamNotEnabled' || error.name === 'NoResponders');
}

/** Errors a later attempt may not meet: timeouts, a missing responder, JetStream saying it is busy or recovering. */
function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'RequestError' || isNoResponders(error)) return true;
  if (isNotFound(error)) return true;
  const status = (error as Error & { status?: unknown }).status;
  return error.name.endsWith('ApiError') && status === 503;
}

function unavailable(message: string, cause: unknown): GantryError {
  return new GantryError('GANTRY_ERR_BUS_UNAVAILABLE', message, { cause, retryable: true });
}

function closedError(stream: string, cause?: unknown): GantryError {
  return new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot use stream ${stream}`, { cause });
}

function isConnectionClosed(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ClosedConnectionError' || error.name === 'DrainingConnectionError');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
