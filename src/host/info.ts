import type { StreamStats } from '../bus/bus.ts';
import type { StreamCounters } from '../bus/counters.ts';
import type { TargetStats } from '../calls/policy.ts';
import type { InstanceRecord } from '../calls/registry.ts';
import type { GantryEnv } from '../config/env.ts';
import type { JobCount } from '../jobs/job-store.ts';
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
  /** The targets this host has called: breaker state, calls under way, and call outcomes since start. */
  callStats(): TargetStats[];
  /** How many jobs of each task of each hosted service are in each state, asked of the job stores now. */
  jobCounts(): Promise<({ service: string } & JobCount)[]>;
  /** The live instances the discovery registry knows, of every process; empty without a registry. */
  liveInstances(): Promise<InstanceRecord[]>;
  /** How many committed messages wait in each emitting service's outbox, asked of its database now. */
  outboxBacklog(): Promise<{ service: string; unsent: number }[]>;
}
