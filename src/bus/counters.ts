/** Counts of one stream and group, kept by the host for metrics and `gantry streams`. */
export interface StreamCounters {
  published: number;
  delivered: number;
  acked: number;
  retried: number;
  deadLettered: number;
}

/** The counters of every stream (`stream` for publishes, `stream|group` for consumption) of one host. */
export class CounterBook {
  private readonly book = new Map<string, StreamCounters>();

  /** The counters of a stream, or of one group of it. */
  of(stream: string, group?: string): StreamCounters {
    const key = group === undefined ? stream : `${stream}|${group}`;
    let counters = this.book.get(key);
    if (!counters) {
      counters = { published: 0, delivered: 0, acked: 0, retried: 0, deadLettered: 0 };
      this.book.set(key, counters);
    }
    return counters;
  }

  /** Every entry, as `{ stream, group?, ...counters }`. */
  entries(): ({ stream: string; group?: string } & StreamCounters)[] {
    return [...this.book.entries()].map(([key, counters]) => {
      const [stream, group] = key.split('|') as [string, string | undefined];
      return group === undefined ? { stream, ...counters } : { stream, group, ...counters };
    });
  }
}
