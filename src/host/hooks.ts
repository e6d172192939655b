import type { Envelope } from '../bus/envelope.ts';
import { GantryError } from '../errors/gantry-error.ts';
import type { ServiceInfo } from '../service/context.ts';
import type { Tracking } from '../tracking/trace-context.ts';

/** What `onEventStart` and `onEventEnd` observe about one run of an event. */
export interface EventRun {
  service: ServiceInfo;
  event: string;
  kind: 'http' | 'consumer' | 'loop' | 'command' | 'task' | 'rpc';
  tracking: Tracking;
  startedAt: number;
  /** Set on `onEventEnd`. */
  durationMs?: number;
  outcome?: 'succeeded' | 'failed';
  /** HTTP status, for HTTP events. */
  status?: number;
  error?: unknown;
  /** For a task's run: the task, and how long its job waited to start once it was due (ms). */
  job?: { task: string; queuedMs: number };
}

/** What `onPublish` observes. */
export interface PublishInfo {
  service: ServiceInfo;
  stream: string;
  /** Its `traceparent` names the publish span: consumers continue the trace under it. */
  envelope: Envelope;
  /** The span of the event that emitted the message; absent when an outbox relays what another instance stored. */
  parentSpanId?: string;
  /**
   * When the publish began (epoch ms; for an outboxed message, when it was emitted) and how long until the bus
   * accepted it; absent when `parentSpanId` is.
   */
  startedAt?: number;
  durationMs?: number;
}

/** What `onDeadLetter` observes. */
export interface DeadLetterInfo {
  stream: string;
  group: string;
  reason: string;
  envelope: Envelope | null;
}

/**
 * The closed list of host hooks. `on*` hooks observe and cannot change the flow; an error they throw is logged
 * and swallowed, so a broken plugin never fails a request.
 */
export interface HookMap {
  onStart: () => void | Promise<void>;
  onReady: () => void | Promise<void>;
  onStop: () => void | Promise<void>;
  onEventStart: (run: EventRun) => void;
  onEventEnd: (run: EventRun) => void;
  onPublish: (info: PublishInfo) => void;
  onDeadLetter: (info: DeadLetterInfo) => void;
}

/** The name of a host hook. */
export type HookName = keyof HookMap;

const HOOK_NAMES: readonly HookName[] = [
  'onStart',
  'onReady',
  'onStop',
  'onEventStart',
  'onEventEnd',
  'onPublish',
  'onDeadLetter',
];

/** The hooks registered on one host. */
export class HookRegistry {
  private readonly hooks: { [K in HookName]: HookMap[K][] } = {
    onStart: [],
    onReady: [],
    onStop: [],
    onEventStart: [],
    onEventEnd: [],
    onPublish: [],
    onDeadLetter: [],
  };

  private readonly onHookError: (hook: HookName, error: unknown) => void;

  constructor(onHookError: (hook: HookName, error: unknown) => void) {
    this.onHookError = onHookError;
  }

  /** Registers a hook; an unknown name or a non-function fails here, never in the middle of a request. */
  add<K extends HookName>(name: K, fn: HookMap[K]): void {
    if (!HOOK_NAMES.includes(name)) {
      throw new GantryError(
        'GANTRY_ERR_HOOK_UNKNOWN',
        `unknown hook '${String(name)}'; hooks are ${HOOK_NAMES.join(', ')}`,
      );
    }
    if (typeof fn !== 'function') {
      throw new GantryError('GANTRY_ERR_HOOK_UNKNOWN', `hook '${name}' must be a function`);
    }
    this.hooks[name].push(fn);
  }

  /** True when at least one hook of that name is registered (lets hot paths skip building the argument). */
  has(name: HookName): boolean {
    return this.hooks[name].length > 0;
  }

  /** Calls the synchronous observers of `name`. */
  emit<K extends 'onEventStart' | 'onEventEnd' | 'onPublish' | 'onDeadLetter'>(
    name: K,
    arg: Parameters<HookMap[K]>[0],
  ): void {
    for (const fn of this.hooks[name] as ((a: typeof arg) => void)[]) {
      try {
        fn(arg);
      } catch (error) {
        this.onHookError(name, error);
      }
    }
  }

  /** Calls the lifecycle hooks of `name` in order, awaiting each. */
  async run(name: 'onStart' | 'onReady' | 'onStop'): Promise<void> {
    for (const fn of this.hooks[name]) {
      try {
        await fn();
      } catch (error) {
        this.onHookError(name, error);
      }
    }
  }
}
