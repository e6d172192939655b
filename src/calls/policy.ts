import {
  BrokenCircuitError,
  type BulkheadPolicy,
  BulkheadRejectedError,
  bulkhead,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  type IBackoffFactory,
  type IBreaker,
  retry,
  SamplingBreaker,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from 'cockatiel';
import { GantryError, toGantryError } from '../errors/gantry-error.ts';
import type { Logger } from '../log/logger.ts';
import type { CallPolicy } from './config.ts';
import { RetryBudget } from './retry-budget.ts';

/** The state of a target's circuit breaker. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** What a policy tells about one target, for readiness, stats and `gantry services`. */
export interface TargetStats {
  target: string;
  breaker: BreakerState;
  /** Calls under way now. */
  inFlight: number;
  /** First attempts and retries over the retry budget's window. */
  requests: number;
  retries: number;
  /** Calls since start that answered, that failed after every attempt, and that failed and took their fallback. */
  succeeded: number;
  failed: number;
  fellBack: number;
}

/** Options of one call through a {@link TargetPolicy}. */
export interface PolicyCallOptions<T> {
  /** The call's own policy (timeout and retry settings); the breaker and bulkhead are the target's. */
  policy: CallPolicy;
  /** Safe to send twice (GET, PUT, DELETE): retried on timeouts and 5xx. Others only when nothing was sent. */
  idempotent: boolean;
  /** Epoch ms the caller's own deadline ends at: no attempt and no backoff runs past it. */
  deadline?: number;
  /** The caller's signal (its event's): an abort ends the call. */
  signal?: AbortSignal;
  /** A value to answer with when the call fails after every attempt (or fails fast), instead of throwing. */
  fallback?: (error: GantryError) => T | Promise<T>;
}

/** What each attempt is given: its signal and how long it may take. */
export interface Attempt {
  signal: AbortSignal;
  timeoutMs: number;
  attempt: number;
}

/**
 * The resilience of calls to one target: a circuit breaker and a bulkhead shared by every call to it, a retry budget,
 * and per call a timeout and retries with exponential backoff and jitter. Built on cockatiel.
 *
 * Order, outermost first: fallback → retry (budgeted) → circuit breaker → bulkhead → timeout → the attempt. The
 * breaker sits outside the bulkhead so an open breaker never holds a slot, and inside the retry so every attempt is
 * counted and a retry against an open breaker fails fast. Only transport errors, timeouts and 5xx count against the
 * breaker: a 404 is an answer, not a failure.
 */
export class TargetPolicy {
  private succeeded = 0;
  private failed = 0;
  private fellBack = 0;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly bulkhead: BulkheadPolicy | undefined;
  private readonly budget: RetryBudget;
  private inFlight = 0;

  readonly target: string;
  private readonly log: Logger;

  constructor(target: string, policy: CallPolicy, log: Logger) {
    this.target = target;
    this.log = log;
    this.breaker = circuitBreaker(handleWhen(countsAgainstBreaker), {
      halfOpenAfter: policy.breakerHalfOpenAfterMs,
      breaker: new EitherBreaker(
        new ConsecutiveBreaker(policy.breakerConsecutiveFailures),
        new SamplingBreaker({
          threshold: policy.breakerFailureRate,
          duration: policy.breakerWindowMs,
          minimumRps: policy.breakerMinimumRps,
        }),
      ),
    });
    this.breaker.onStateChange((state) => {
      const named = stateName(state);
      const line = { target, breaker: named };
      if (named === 'open') this.log.warn(line, `circuit to ${target} opened: calls fail fast`);
      else this.log.info(line, `circuit to ${target} is ${named}`);
    });
    this.bulkhead = policy.bulkheadLimit > 0 ? bulkhead(policy.bulkheadLimit, policy.bulkheadQueue) : undefined;
    this.budget = new RetryBudget({ ratio: policy.retryBudgetRatio, minPerSecond: policy.retryBudgetMinPerSecond });
  }

  /** The breaker's state now. */
  get state(): BreakerState {
    return stateName(this.breaker.state);
  }

  /** Stats of this target. */
  stats(): TargetStats {
    return {
      target: this.target,
      breaker: this.state,
      inFlight: this.inFlight,
      ...this.budget.snapshot(),
      succeeded: this.succeeded,
      failed: this.failed,
      fellBack: this.fellBack,
    };
  }

  /** Runs `attempt` under the policy; rejects with a coded `GANTRY_ERR_CALL_*` error (or answers the fallback). */
  async execute<T>(attempt: (a: Attempt) => Promise<T>, options: PolicyCallOptions<T>): Promise<T> {
    const { policy, deadline } = options;
    this.budget.recordRequest();
    let attempts = 0;
    const shouldRetry = (error: unknown): boolean => {
      if (attempts >= policy.maxAttempts || options.signal?.aborted) return false;
      const coded = toCallError(error, this.target);
      if (!isRetryable(coded, options.idempotent || policy.retryNonIdempotent)) return false;
      if (deadline !== undefined && deadline - Date.now() <= 1) return false;
      return this.budget.tryRetry();
    };
    const retries = retry(handleWhen(shouldRetry), {
      maxAttempts: policy.maxAttempts - 1,
      backoff: new DeadlineBackoff(
        new ExponentialBackoff({ initialDelay: policy.initialDelayMs, maxDelay: policy.maxDelayMs }),
        deadline,
      ),
    });
    this.inFlight++;
    try {
      const value = await retries.execute(
        () =>
          this.breaker.execute(() => {
            attempts++;
            const run = (): Promise<T> => this.attempt(attempt, attempts, policy, deadline, options.signal);
            return this.bulkhead ? this.bulkhead.execute(run) : run();
          }),
        options.signal,
      );
      this.succeeded++;
      return value;
    } catch (error) {
      const coded = toCallError(error, this.target);
      if (options.fallback) {
        this.fellBack++;
        return options.fallback(coded);
      }
      this.failed++;
      throw coded;
    } finally {
      this.inFlight--;
    }
  }

  /** One attempt, bounded by the call's timeout and the caller's deadline, whichever ends first. */
  private async attempt<T>(
    fn: (a: Attempt) => Promise<T>,
    attempt: number,
    policy: CallPolicy,
    deadline: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now();
    if (left <= 0) {
      throw new GantryError(
        'GANTRY_ERR_CALL_TIMEOUT',
        `the caller's deadline passed before ${this.target} was called`,
        {
          details: { target: this.target, deadline: true },
        },
      );
    }
    const timeoutMs = Math.max(1, Math.floor(Math.min(policy.timeoutMs, left)));
    const limit = timeout(timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: true });
    try {
      return await limit.execute(
        (_context, attemptSignal) => fn({ signal: attemptSignal, timeoutMs, attempt }),
        signal,
      );
    } catch (error) {
      if (error instanceof TaskCancelledError) {
        throw new GantryError('GANTRY_ERR_CALL_TIMEOUT', `${this.target} did not answer within ${timeoutMs} ms`, {
          details: { target: this.target, timeoutMs, deadline: timeoutMs < policy.timeoutMs },
        });
      }
      throw error;
    }
  }
}

/** Opens when either breaker says so: N failures in a row, or a failure rate over a window. */
class EitherBreaker implements IBreaker {
  private readonly consecutive: ConsecutiveBreaker;
  private readonly sampling: SamplingBreaker;

  constructor(consecutive: ConsecutiveBreaker, sampling: SamplingBreaker) {
    this.consecutive = consecutive;
    this.sampling = sampling;
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, sampling: this.sampling.state };
  }

  set state(value: unknown) {
    const parts = value as { consecutive?: unknown; sampling?: unknown } | undefined;
    if (typeof parts?.consecutive === 'number') this.consecutive.state = parts.consecutive;
    if (parts?.sampling !== undefined) this.sampling.state = parts.sampling;
  }

  success(state: CircuitState): void {
    this.consecutive.success();
    this.sampling.success(state);
  }

  failure(state: CircuitState): boolean {
    // Both are told of every failure, so each keeps its own count right.
    const a = this.consecutive.failure();
    const b = this.sampling.failure(state);
    return a || b;
  }
}

/** Shortens each backoff so that the retry never starts past the caller's deadline. */
class DeadlineBackoff<C> implements IBackoffFactory<C> {
  private readonly inner: IBackoffFactory<C>;
  private readonly deadline: number | undefined;

  constructor(inner: IBackoffFactory<C>, deadline: number | undefined) {
    this.inner = inner;
    this.deadline = deadline;
  }

  next(context: C): IBackoff<C> {
    const step = this.inner.next(context);
    const left = this.deadline === undefined ? Number.POSITIVE_INFINITY : this.deadline - Date.now();
    return {
      duration: Math.max(0, Math.min(step.duration, left - 1)),
      next: (ctx: C) => new DeadlineBackoff(step, this.deadline).next(ctx),
    };
  }
}

const BREAKER_CODES = new Set([
  'GANTRY_ERR_CALL_TIMEOUT',
  'GANTRY_ERR_CALL_UNREACHABLE',
  'GANTRY_ERR_CALL_NO_INSTANCE',
]);

/** Transport errors, timeouts and 5xx answers count against the breaker; answers like 404 or 409 do not. */
export function countsAgainstBreaker(error: unknown): boolean {
  // An RPC's error reply is the handler's answer: the target is up.
  if ((error as { reply?: boolean }).reply === true) return false;
  if (!(error instanceof GantryError)) return !(error instanceof BulkheadRejectedError);
  if (BREAKER_CODES.has(error.code)) return true;
  return error.code === 'GANTRY_ERR_CALL_UPSTREAM' && error.status >= 500;
}

/** Whether a failed attempt may be tried again. */
function isRetryable(error: GantryError, idempotent: boolean): boolean {
  if ((error as { reply?: boolean }).reply === true) return false;
  const details = error.details as { notSent?: boolean; upstreamStatus?: number } | undefined;
  switch (error.code) {
    case 'GANTRY_ERR_CALL_UNREACHABLE':
    case 'GANTRY_ERR_CALL_NO_INSTANCE':
      // Refused before anything was sent: safe to send again whatever the method.
      return idempotent || details?.notSent === true;
    case 'GANTRY_ERR_CALL_TIMEOUT':
      // A timeout cut short by the caller's deadline leaves no time to try again.
      return idempotent && (details as { deadline?: boolean } | undefined)?.deadline !== true;
    case 'GANTRY_ERR_CALL_UPSTREAM':
      return idempotent && [502, 503, 504].includes(details?.upstreamStatus ?? error.status);
    default:
      return false;
  }
}

/** Turns what a policy or an attempt threw into a coded call error. */
export function toCallError(error: unknown, target: string): GantryError {
  if (error instanceof BrokenCircuitError) {
    return new GantryError('GANTRY_ERR_CALL_CIRCUIT_OPEN', `the circuit to ${target} is open: failing fast`, {
      details: { target },
    });
  }
  if (error instanceof BulkheadRejectedError) {
    return new GantryError('GANTRY_ERR_CALL_BULKHEAD_FULL', `too many calls to ${target} under way`, {
      details: { target },
    });
  }
  if (error instanceof TaskCancelledError) {
    return new GantryError('GANTRY_ERR_CALL_TIMEOUT', `the call to ${target} was cancelled`, { details: { target } });
  }
  return toGantryError(error);
}

function stateName(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    case CircuitState.Open:
    case CircuitState.Isolated:
      return 'open';
  }
}
