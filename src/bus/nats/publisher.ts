import type { ApiError } from '@nats-io/jetstream';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';

/** The library classes the publisher rejects with, so that callers classify its failures as the client's own. */
export interface NatsPublishErrors {
  /** The attempt's time ran out without a publish ack (`TimeoutError`). */
  timeout: new () => Error;
  /** No stream listens on the subject (`NoResponders`). */
  noResponders: new (
    subject: string,
  ) => Error;
  /** JetStream refused the message (`JetStreamApiError`, with the server's `err_code` as `code`). */
  api: new (
    error: ApiError,
  ) => Error;
  /** The bus closed with the publish outstanding (`ClosedConnectionError`). */
  closed: new () => Error;
}

/** A publish waiting for its ack. */
interface Pending {
  subject: string;
  expires: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The JetStream error code of a publish that reached no stream (a stream deleted in between). */
const STREAM_NOT_FOUND = 10059;

/**
 * JetStream publishes with acks: each message is published with a reply subject under one inbox of this publisher,
 * and the server's publish ack (or error) comes back there. It does what `js.publish` does with less per message:
 * the client's request path arms a timer, builds a "cancelled" error (with its stack) and races two promises for
 * every request, a third of a busy producer's CPU. Here one subscription takes every ack, and one timer, armed for the
 * earliest deadline, fails the publishes whose time ran out.
 */
export class NatsPublisher {
  private readonly nc: NatsConnection;
  private readonly errors: NatsPublishErrors;
  /** `<inbox>.`: a publish's reply subject is this and its token. */
  private readonly replyPrefix: string;
  private sub: Subscription | undefined;
  private readonly pending = new Map<string, Pending>();
  private nextToken = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(nc: NatsConnection, inbox: string, errors: NatsPublishErrors) {
    this.nc = nc;
    this.errors = errors;
    this.replyPrefix = `${inbox}.`;
  }

  /**
   * Publishes `body` with `headers` on `subject` and resolves once the stream has stored it. Rejects after
   * `timeoutMs` without an ack, or with the server's refusal, with the classes of {@link NatsPublishErrors}; throws
   * what the connection throws (closed, draining, bad subject) as it is.
   */
  publish(subject: string, body: string, headers: MsgHdrs, timeoutMs: number): Promise<void> {
    if (this.sub === undefined) this.listen();
    const token = (this.nextToken++).toString(36);
    return new Promise<void>((resolve, reject) => {
      const expires = Date.now() + timeoutMs;
      this.nc.publish(subject, body, { reply: this.replyPrefix + token, headers });
      this.pending.set(token, { subject, expires, resolve, reject });
      if (expires < this.timerAt) this.arm(expires);
    });
  }

  /** Fails what is still waiting (the connection is closing, so no ack will come) and stops listening. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    for (const pending of this.pending.values()) pending.reject(new this.errors.closed());
    this.pending.clear();
    try {
      this.sub?.unsubscribe();
    } catch {
      // Already closed with the connection.
    }
    this.sub = undefined;
  }

  /** Subscribes to the acks; the client subscribes again by itself after a reconnect. */
  private listen(): void {
    this.sub = this.nc.subscribe(`${this.replyPrefix}*`, {
      callback: (error, msg) => {
        if (error === null) this.settle(msg);
      },
    });
  }

  private settle(msg: Msg): void {
    const token = msg.subject.slice(this.replyPrefix.length);
    const pending = this.pending.get(token);
    // An ack after its publish timed out: the retry has its own token and waits for its own ack.
    if (pending === undefined) return;
    this.pending.delete(token);
    // Nothing left to time out: no timer outlives the last publish (it would hold the process up to its deadline).
    if (this.pending.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
    }
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      pending.reject(new this.errors.noResponders(pending.subject));
      return;
    }
    let ack: { stream?: unknown; error?: ApiError };
    try {
      ack = msg.json<typeof ack>();
    } catch {
      pending.reject(new Error(`invalid publish ack: ${msg.string().slice(0, 200)}`));
      return;
    }
    if (ack.error !== undefined) {
      pending.reject(
        ack.error.err_code === STREAM_NOT_FOUND
          ? new this.errors.noResponders(pending.subject)
          : new this.errors.api(ack.error),
      );
    } else if (typeof ack.stream !== 'string' || ack.stream === '') {
      pending.reject(new Error('invalid publish ack: no stream'));
    } else {
      pending.resolve();
    }
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
  }

  /** Fails the publishes whose time ran out and arms the timer for the next deadline. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [token, pending] of this.pending) {
      if (pending.expires <= now) {
        this.pending.delete(token);
        pending.reject(new this.errors.timeout());
      } else if (pending.expires < next) {
        next = pending.expires;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
