import type { CustomerChange } from '../customers/streams.ts';

/** One change as the browsers receive it: the message id (the SSE event id) and the change with before and after. */
export interface BroadcastChange {
  id: string;
  change: CustomerChange;
}

/** Receives every change published after it subscribed. */
export type ChangeListener = (event: BroadcastChange) => void;

/**
 * Hands each customer change to every browser connected to this instance. It lives in memory and belongs to one host
 * (created in the host file, given to both the `web` service that feeds it and the `webApp` plugin that reads it),
 * so two hosts in one process never share browsers.
 *
 * @remarks It keeps no history: a browser that connects, or reconnects, reloads what it shows and then follows the
 * changes from there on. Delivery to a listener is synchronous and in publish order.
 *
 * @example
 * const broadcaster = new ChangeBroadcaster();
 * const stop = broadcaster.subscribe((event) => console.log(event.change.operation));
 * broadcaster.publish({ id: 'm-1', change });
 * stop();
 */
export class ChangeBroadcaster {
  private readonly listeners = new Set<ChangeListener>();
  private feeds = 0;

  /** Adds a listener; returns the function that removes it (safe to call twice). */
  subscribe(listener: ChangeListener): () => void {
    // A wrapper per subscription, so the same function subscribed twice is removed once per call.
    const entry: ChangeListener = (event) => listener(event);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /**
   * Gives a change to every listener. A listener that throws is removed and the others still receive the change: one
   * broken browser connection never holds back the rest, nor fails the consumer that feeds the broadcaster.
   *
   * @returns how many listeners received it
   */
  publish(event: BroadcastChange): number {
    let delivered = 0;
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
        delivered += 1;
      } catch {
        this.listeners.delete(listener);
      }
    }
    return delivered;
  }

  /** How many listeners (open browser streams) there are now. */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /**
   * Marks the broadcaster as fed by a running consumer until the returned function is called. Lets the plugin tell a
   * host that serves the app without the `web` service (whose browsers would never see a change) from one that does.
   */
  attachFeed(): () => void {
    this.feeds += 1;
    let attached = true;
    return () => {
      if (attached) this.feeds -= 1;
      attached = false;
    };
  }

  /** True while at least one consumer feeds this broadcaster. */
  get fed(): boolean {
    return this.feeds > 0;
  }
}
