import { GantryError } from '../../errors/gantry-error.ts';
import type { Bus, CheckResult, Delivery, StreamStats, SubscribeOptions, Subscription } from '../bus.ts';
import type { Envelope } from '../envelope.ts';

interface Pending {
  envelope: Envelope;
  attempt: number;
}

interface Subscriber {
  onDelivery: (delivery: Delivery) => Promise<void>;
  concurrency: number;
  active: number;
  stopped: boolean;
  idle: (() => void)[];
}

interface Group {
  queue: Pending[];
  /** Delivered and not yet acked or retried. */
  inFlight: number;
  subscribers: Subscriber[];
  next: number;
  timers: Set<NodeJS.Timeout>;
}

/**
 * The in-memory bus: streams and consumer groups inside one process, for tests and the laptop topology.
 * Messages are copied through JSON on publish so consumers see what a real broker would hand them.
 *
 * @remarks Nothing survives the process: prod refuses it unless embedded defaults are allowed.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory';
  readonly embedded = true;
  private readonly streams = new Map<string, Map<string, Group>>();
  private closed = false;
  private readonly claimTimeoutMs: number;

  /**
   * @param options.claimTimeoutMs - how long a delivery may stay unsettled before it is handed to another
   *   consumer of the group, as brokers reclaim the messages of a hung or dead consumer (default 30 s).
   */
  constructor(options: { claimTimeoutMs?: number } = {}) {
    this.claimTimeoutMs = options.claimTimeoutMs ?? 30_000;
  }

  async publish(stream: string, envelope: Envelope): Promise<void> {
    if (this.closed) throw new GantryError('GANTRY_ERR_BUS_CLOSED', `bus closed; cannot publish to ${stream}`);
    const copy = JSON.parse(JSON.stringify(envelope)) as Envelope;
    for (const group of this.groupsOf(stream).values()) {
      group.queue.push({ envelope: copy, attempt: 1 });
      this.pump(group);
    }
  }

  async subscribe(
    stream: string,
    groupName: string,
    onDelivery: (delivery: Delivery) => Promise<void>,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    const groups = this.groupsOf(stream);
    let group = groups.get(groupName);
    if (!group) {
      group = { queue: [], inFlight: 0, subscribers: [], next: 0, timers: new Set() };
      groups.set(groupName, group);
    }
    const subscriber: Subscriber = {
      onDelivery,
      concurrency: Math.max(1, options.concurrency),
      active: 0,
      stopped: false,
      idle: [],
    };
    group.subscribers.push(subscriber);
    const owner = group;
    this.pump(owner);
    return {
      stop: async () => {
        subscriber.stopped = true;
        owner.subscribers = owner.subscribers.filter((s) => s !== subscriber);
        if (subscriber.active > 0) await new Promise<void>((resolve) => subscriber.idle.push(resolve));
      },
    };
  }

  async stats(stream: string, group?: string): Promise<StreamStats> {
    const groups = this.groupsOf(stream);
    if (group === undefined) return { stream };
    const state = groups.get(group);
    return { stream, group, lag: state ? state.queue.length + state.inFlight : 0 };
  }

  async check(): Promise<CheckResult> {
    return this.closed ? { ok: false, detail: 'closed' } : { ok: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const groups of this.streams.values()) {
      for (const group of groups.values()) for (const timer of group.timers) clearTimeout(timer);
    }
  }

  private groupsOf(stream: string): Map<string, Group> {
    let groups = this.streams.get(stream);
    if (!groups) {
      groups = new Map();
      this.streams.set(stream, groups);
    }
    return groups;
  }

  /** Hands queued messages to subscribers with spare capacity, round-robin, so a group balances its load. */
  private pump(group: Group): void {
    while (group.queue.length > 0) {
      const subscriber = this.nextFree(group);
      if (!subscriber) return;
      const pending = group.queue.shift() as Pending;
      this.deliver(group, subscriber, pending);
    }
  }

  private nextFree(group: Group): Subscriber | undefined {
    const count = group.subscribers.length;
    for (let i = 0; i < count; i++) {
      const candidate = group.subscribers[(group.next + i) % count] as Subscriber;
      if (!candidate.stopped && candidate.active < candidate.concurrency) {
        group.next = (group.next + i + 1) % count;
        return candidate;
      }
    }
    return undefined;
  }

  private deliver(group: Group, subscriber: Subscriber, pending: Pending): void {
    subscriber.active++;
    group.inFlight++;
    let settled = false;
    const claim = setTimeout(() => {
      group.timers.delete(claim);
      if (settled) return;
      settled = true;
      group.inFlight--;
      group.queue.push({ envelope: pending.envelope, attempt: pending.attempt + 1 });
      this.pump(group);
    }, this.claimTimeoutMs);
    group.timers.add(claim);
    const settle = (): void => {
      clearTimeout(claim);
      group.timers.delete(claim);
      // Settling after the claim timeout handed the message on is a no-op, as a late ack is on a broker.
      if (settled) return;
      settled = true;
      group.inFlight--;
    };
    const delivery: Delivery = {
      envelope: pending.envelope,
      attempt: pending.attempt,
      ack: async () => settle(),
      retry: async (delayMs) => {
        if (settled) return;
        settle();
        const timer = setTimeout(() => {
          group.timers.delete(timer);
          group.queue.push({ envelope: pending.envelope, attempt: pending.attempt + 1 });
          this.pump(group);
        }, delayMs);
        group.timers.add(timer);
      },
    };
    const finish = (): void => {
      // A handler that neither acked nor retried gives the message back, as a broker would after its claim timeout.
      if (!settled) {
        settle();
        group.queue.push({ envelope: pending.envelope, attempt: pending.attempt + 1 });
      }
      subscriber.active--;
      if (subscriber.active === 0) for (const resolve of subscriber.idle.splice(0)) resolve();
      this.pump(group);
    };
    subscriber.onDelivery(delivery).then(finish, finish);
  }
}
