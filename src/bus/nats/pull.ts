import type { Msg, NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { Delivery } from '../bus.ts';
import type { Envelope } from '../envelope.ts';
import { decodeNatsMessage, deliveryCount } from './codec.ts';

/** What a pull subscription needs from the bus that owns it. */
export interface NatsPullOwner {
  readonly nc: NatsConnection;
  /** True while the connection is up and the bus open: pull requests are only worth sending then. */
  isPulling(): boolean;
  /** Makes sure the stream and the group's durable consumer exist (again, after a loss). */
  ensureConsumer(): Promise<void>;
  /** Sends what the connection holds (acks) to the server; bounded while disconnected. */
  flush(): Promise<void>;
  /** Called once the subscription is stopped. */
  release(pull: NatsPullSubscription): void;
}

/** The settings of one pull subscription. */
export interface NatsPullSettings {
  /** `<api prefix>.CONSUMER.MSG.NEXT.<stream>.<durable>`: where pull requests go. */
  nextSubject: string;
  /** A fresh inbox: the reply subject of every pull request of this subscription. */
  inbox: string;
  concurrency: number;
  onDelivery: (delivery: Delivery) => Promise<void>;
  /** The client library's converter from milliseconds to the nanoseconds the JetStream API takes. */
  nanos: (millis: number) => number;
}

/** How long one pull request waits at the server before it ends (408) and is sent again. */
const EXPIRES_MS = 30_000;
/** How often the server tells a waiting request is alive; two missed in a row mean the requests are lost. */
const HEARTBEAT_MS = 5_000;

/** How long a stop waits for the inbox to drain when the server does not answer (connection down). */
const DRAIN_WAIT_MS = 5_000;

// The acknowledgement protocol's payloads, encoded once: acks are sent for every message.
const ACK = new TextEncoder().encode('+ACK');
const NAK = new TextEncoder().encode('-NAK');

/**
 * One subscription's pull loop, on the JetStream pull protocol over a single inbox: pull requests (`batch`, `expires`,
 * `idle_heartbeat`) go to the consumer's `MSG.NEXT` subject, messages and status replies come back on the inbox.
 *
 * It keeps `inHand + requested <= concurrency`, where `requested` counts messages asked for and not yet received
 * (the server reports what an ended request left unfilled), so the server never sends more than the free slots. A
 * request is sent once a quarter of the slots (at least one) are free: a busy consumer asks in batches, at the price
 * of up to a quarter of the slots waiting for that batch. When the count cannot be trusted (connection lost, silence,
 * a request refused), it restarts from zero, and a message beyond the concurrency is given straight back (NAK), so
 * the bound holds even then.
 */
export class NatsPullSubscription {
  private readonly owner: NatsPullOwner;
  private readonly settings: NatsPullSettings;
  private readonly batchAt: number;
  private inHand = 0;
  private requested = 0;
  /** When the server last said anything on the inbox. */
  private lastHeard = Date.now();
  private sub: NatsSubscription | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private recovery: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly idle: (() => void)[] = [];

  constructor(owner: NatsPullOwner, settings: NatsPullSettings) {
    this.owner = owner;
    this.settings = settings;
    this.batchAt = Math.max(1, Math.ceil(settings.concurrency / 4));
  }

  /** Listens on the inbox and sends the first pull request. */
  start(): void {
    this.sub = this.owner.nc.subscribe(this.settings.inbox, {
      callback: (error, msg) => {
        if (error) this.restart();
        else this.receive(msg);
      },
    });
    this.watchdog = setInterval(() => this.checkAlive(), HEARTBEAT_MS);
    this.watchdog.unref();
    this.pump();
  }

  /** Sends a pull request for the free slots, when enough are free and pulling makes sense. */
  pump(): void {
    if (this.stopped || this.recovery !== undefined || !this.owner.isPulling()) return;
    const free = this.settings.concurrency - this.inHand - this.requested;
    if (free < this.batchAt) return;
    // The silence the watchdog measures starts with the first request outstanding.
    if (this.requested === 0) this.lastHeard = Date.now();
    this.requested += free;
    const { nanos } = this.settings;
    const request = JSON.stringify({ batch: free, expires: nanos(EXPIRES_MS), idle_heartbeat: nanos(HEARTBEAT_MS) });
    try {
      this.owner.nc.publish(this.settings.nextSubject, request, { reply: this.settings.inbox });
    } catch {
      this.requested -= free;
    }
  }

  /** The connection was lost: the server forgets the requests of a gone client, so they are counted as gone. */
  connectionLost(): void {
    this.requested = 0;
  }

  /**
   * Stops pulling, waits for the inbox to drain and the deliveries in hand to be settled, then flushes their acks to
   * the server.
   */
  async stop(): Promise<void> {
    const drained = this.abandon();
    if (this.inHand > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await drained;
    await this.owner.flush();
    this.owner.release(this);
  }

  /**
   * Stops pulling without waiting for the handlers. The inbox is drained: unsubscribed, and what the server sent
   * before it saw that is still received and NAKed straight back. The server skips a request nobody listens to, so
   * what this subscription asked for goes to the group's other consumers at once. Resolves once drained (bounded).
   */
  abandon(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.recovery);
    this.recovery = undefined;
    const sub = this.sub;
    this.sub = undefined;
    if (sub === undefined || this.owner.nc.isClosed()) return Promise.resolve();
    const drained = sub.drain().catch(() => undefined);
    return Promise.race([drained, sleep(DRAIN_WAIT_MS)]).then(() => undefined);
  }

  private receive(msg: Msg): void {
    this.lastHeard = Date.now();
    // A message carries its ack subject as reply (and its own subject); status replies come on the inbox itself with
    // none. Telling them apart by the reply first leaves a message's headers to the codec, which reads them once.
    if (msg.reply?.startsWith('$JS.ACK.')) {
      this.onMessage(msg);
      return;
    }
    if (msg.subject !== this.settings.inbox) return;
    const status = msg.headers?.code ?? 0;
    if (status !== 0) this.onStatus(msg, status);
  }

  private onStatus(msg: Msg, status: number): void {
    // 100: an idle heartbeat, the requests are alive.
    if (status === 100) return;
    // A request that ended (408 expired, some 409s) says how much of it went unfilled.
    const left = Number(msg.headers?.get('Nats-Pending-Messages'));
    if (left > 0) this.requested = Math.max(0, this.requested - left);
    const description = msg.headers?.description ?? '';
    if (status === 408 || (left > 0 && !/deleted/i.test(description))) {
      this.pump();
      return;
    }
    // Anything else (consumer deleted, too many waiting requests, no responders, ...) leaves the count unknown, or
    // the consumer gone: start over once the consumer is known to exist.
    this.restart();
  }

  private onMessage(msg: Msg): void {
    if (this.requested > 0) this.requested--;
    if (this.stopped || this.inHand >= this.settings.concurrency) {
      respond(msg, NAK);
      return;
    }
    this.failures = 0;
    void this.deliver(msg);
  }

  /** Two heartbeats missed with requests outstanding: the requests or the consumer are gone. */
  private checkAlive(): void {
    if (this.requested > 0 && Date.now() - this.lastHeard > 2 * HEARTBEAT_MS + 1_000) this.restart();
  }

  /**
   * Forgets the outstanding requests and, after a delay growing with each failure in a row, makes sure the stream and
   * consumer exist (they may have been deleted, or JetStream restarted without them) and pulls again.
   */
  private restart(): void {
    this.requested = 0;
    if (this.stopped || this.recovery !== undefined || !this.owner.isPulling()) return;
    const wait = Math.min(5_000, 100 * 2 ** this.failures);
    this.failures++;
    this.recovery = setTimeout(() => {
      void this.owner
        .ensureConsumer()
        .catch(() => undefined)
        .finally(() => {
          this.recovery = undefined;
          this.pump();
        });
    }, wait);
  }

  /** Hands one message to the handler and frees its slot once the handler is done, however it ended. */
  private async deliver(msg: Msg): Promise<void> {
    this.inHand++;
    const delivery = new NatsDelivery(msg, this.settings.nanos);
    try {
      await this.settings.onDelivery(delivery);
    } catch {
      // The handler's failure is its own to report; the message is given back below.
    }
    // A handler that returned without settling gives the message back now rather than after the claim timeout.
    delivery.giveBack();
    this.inHand--;
    if (!this.stopped) this.pump();
    else if (this.inHand === 0) for (const resolve of this.idle.splice(0)) resolve();
  }
}

/** One message in hand, settled through the JetStream acknowledgement protocol on its reply subject. */
class NatsDelivery implements Delivery {
  readonly envelope: Envelope | null;
  readonly decodeError?: string;
  readonly raw?: string;
  readonly attempt: number;
  private readonly msg: Msg;
  private readonly nanos: (millis: number) => number;
  private settled = false;

  constructor(msg: Msg, nanos: (millis: number) => number) {
    this.msg = msg;
    this.nanos = nanos;
    const decoded = decodeNatsMessage(msg);
    this.envelope = decoded.ok ? decoded.envelope : null;
    if (!decoded.ok) {
      this.decodeError = decoded.error;
      this.raw = decoded.raw;
    }
    this.attempt = deliveryCount(msg.reply as string);
  }

  async ack(): Promise<void> {
    if (this.settled) return;
    this.msg.respond(ACK);
    this.settled = true;
  }

  async retry(delayMs: number): Promise<void> {
    if (this.settled) return;
    const delay = Math.max(0, Math.round(delayMs));
    // A NAK with a delay: the server redelivers no sooner than that.
    this.msg.respond(delay === 0 ? NAK : `-NAK ${JSON.stringify({ delay: this.nanos(delay) })}`);
    this.settled = true;
  }

  /** NAKs the message unless the handler settled it. */
  giveBack(): void {
    if (this.settled) return;
    this.settled = true;
    respond(this.msg, NAK);
  }
}

/** Answers a message when the connection allows; when it does not, the server redelivers after the claim timeout. */
function respond(msg: Msg, payload: Uint8Array): void {
  try {
    msg.respond(payload);
  } catch {
    // Closed connection: nothing more to do.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
