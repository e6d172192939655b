import { lookup } from 'node:dns/promises';
import { GantryError } from '../errors/gantry-error.ts';
import type { InstanceRecord, Registry } from './registry.ts';

/** One instance a call was sent to; `release()` once the call to it settled (least-in-flight counts on it). */
export interface Endpoint {
  readonly url: string;
  release(): void;
}

/** Picks the instance the next call goes to. */
export interface InstancePicker {
  pick(): Promise<Endpoint>;
}

/** Where a target's instances come from: a fixed list, a DNS name, or the registry. */
export interface InstanceSource {
  /** The base URLs of the live instances now. */
  urls(): Promise<string[]>;
}

/** How an instance is chosen among several. */
export type BalanceMode = 'round-robin' | 'least-in-flight';

/** Fixed base URLs (`http://10.0.0.5:8080,http://10.0.0.6:8080`). */
export function staticSource(urls: readonly string[]): InstanceSource {
  const list = urls.map((url) => url.trim().replace(/\/$/, '')).filter(Boolean);
  return { urls: async () => list };
}

/**
 * Every address of a DNS name (`dns://customers.internal:8080`, or `dns+https://...` for TLS), looked up again once
 * the answer is older than `ttlMs` (the OS resolver's own cache applies underneath).
 */
export function dnsSource(url: URL, ttlMs = 5_000): InstanceSource {
  const scheme = url.protocol === 'dns+https:' ? 'https' : 'http';
  const port = url.port === '' ? '' : `:${url.port}`;
  let cached: { at: number; urls: string[] } | undefined;
  return {
    urls: async () => {
      if (cached && Date.now() - cached.at < ttlMs) return cached.urls;
      try {
        const addresses = await lookup(url.hostname, { all: true });
        const urls = addresses.map((a) => `${scheme}://${a.family === 6 ? `[${a.address}]` : a.address}${port}`);
        cached = { at: Date.now(), urls };
        return urls;
      } catch (error) {
        if (cached) return cached.urls;
        throw new GantryError('GANTRY_ERR_CALL_UNREACHABLE', `cannot resolve ${url.hostname}`, {
          cause: error,
          details: { notSent: true },
        });
      }
    },
  };
}

/** The live instances of a service in the registry, looked up again once the answer is older than `ttlMs`. */
export function registrySource(
  registry: Registry,
  service: string,
  ttlMs = 500,
): InstanceSource & {
  records(): Promise<InstanceRecord[]>;
} {
  let cached: { at: number; records: InstanceRecord[] } | undefined;
  let inFlight: Promise<InstanceRecord[]> | undefined;
  const records = async (): Promise<InstanceRecord[]> => {
    if (cached && Date.now() - cached.at < ttlMs) return cached.records;
    inFlight ??= registry
      .list(service)
      .then((found) => {
        cached = { at: Date.now(), records: found };
        return found;
      })
      .catch((error: unknown) => {
        // A registry hiccup should not fail calls while a recent answer is at hand.
        if (cached) return cached.records;
        throw error;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  return { records, urls: async () => (await records()).map((r) => r.address) };
}

/**
 * Picks among a source's instances, round-robin or to the one with the fewest calls under way (ties broken
 * round-robin). In-flight counts are kept per URL by this picker, so they cover this process's calls only.
 */
export class Balancer implements InstancePicker {
  private next = 0;
  private readonly inFlight = new Map<string, number>();

  private readonly target: string;
  private readonly source: InstanceSource;
  private readonly mode: BalanceMode;

  constructor(target: string, source: InstanceSource, mode: BalanceMode) {
    this.target = target;
    this.source = source;
    this.mode = mode;
  }

  async pick(): Promise<Endpoint> {
    const urls = await this.source.urls();
    if (urls.length === 0) {
      throw new GantryError('GANTRY_ERR_CALL_NO_INSTANCE', `no live instance of ${this.target}`, {
        details: { target: this.target, notSent: true },
      });
    }
    const start = this.next++ % urls.length;
    let chosen = urls[start] as string;
    if (this.mode === 'least-in-flight') {
      let least = this.inFlight.get(chosen) ?? 0;
      for (let i = 1; i < urls.length && least > 0; i++) {
        const url = urls[(start + i) % urls.length] as string;
        const count = this.inFlight.get(url) ?? 0;
        if (count < least) {
          least = count;
          chosen = url;
        }
      }
    }
    this.inFlight.set(chosen, (this.inFlight.get(chosen) ?? 0) + 1);
    let released = false;
    return {
      url: chosen,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.inFlight.get(chosen) ?? 1) - 1;
        if (left <= 0) this.inFlight.delete(chosen);
        else this.inFlight.set(chosen, left);
      },
    };
  }
}
