import type { StreamStats } from '../bus/bus.ts';
import type { StreamCounters } from '../bus/counters.ts';
import type { GantryEnv } from '../config/env.ts';
import type { ServiceInfo } from '../service/context.ts';
import type { AnyService } from '../service/service.ts';

/** What a host tells about itself to plugins and to `/`. */
export interface HostInfo {
  readonly env: GantryEnv;
  readonly services: readonly AnyService[];
  /** Name and version of every hosted service. */
  serviceInfos(): ServiceInfo[];
  /** Publish and consumption counters per stream and group. */
  streamCounters(): ({ stream: string; group?: string } & StreamCounters)[];
  /** What the bus can tell of a stream and group (its lag), asked of the broker now; rejects before the bus opens. */
  streamStats(stream: string, group?: string): Promise<StreamStats>;
  uptimeSeconds(): number;
}
