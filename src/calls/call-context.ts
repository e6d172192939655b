import type { ServiceInfo } from '../service/context.ts';
import type { Tracking } from '../tracking/trace-context.ts';

/** What an outbound call knows of the event that makes it: who calls, its tracking ids, its deadline, its signal. */
export interface CallContext {
  readonly caller: ServiceInfo;
  readonly tracking: Tracking;
  /** Epoch ms the calling event's own deadline ends at; no call waits past it. Undefined for loops and setup. */
  readonly deadline: number | undefined;
  readonly signal: AbortSignal;
}
