import { SpanKind } from '@opentelemetry/api';
import type { Tracking } from '../tracking/trace-context.ts';
import { timeWork } from '../tracking/work-spans.ts';
import type { Context } from './context.ts';

const FAN_OUT = Symbol('gantry.fanOut');
const DONE = Symbol('gantry.done');

/** A step's request to continue the pipeline once for each item (hopeit's Spawn). */
export interface FanOut<T> {
  readonly [FAN_OUT]: readonly T[];
}

/** A step's request to end the pipeline now with this result. */
export interface Done<R> {
  readonly [DONE]: R;
}

/** Continue the rest of the pipeline once per item; the pipeline then yields the list of results. */
export function fanOut<T>(items: Iterable<T>): FanOut<T> {
  return { [FAN_OUT]: [...items] };
}

/** End the pipeline early with `result` (for an HTTP event, the response). */
export function done<R>(result: R): Done<R> {
  return { [DONE]: result };
}

type Awaitable<T> = T | Promise<T>;

/** One small typed function of a pipeline, testable alone. */
export type Step<I, O, C = Context> = (input: I, ctx: C) => Awaitable<O>;

/** What the next step receives from a step that returned `O`. */
export type NextInput<O> = O extends FanOut<infer T> ? T : O extends Done<unknown> ? never : O;
/** What a step returning `O` can make the whole pipeline answer early. */
type EarlyResult<O> = O extends Done<infer R> ? R : never;
type HasFanOut<O> = [Extract<O, FanOut<unknown>>] extends [never] ? false : true;

/** A handler built by {@link steps}, with the names of its steps kept for logs and traces. */
export interface Pipeline<I, R, C> {
  (input: I, ctx: C): Promise<R>;
  readonly stepNames: readonly string[];
}

type Final<Os extends unknown[], Last> =
  | (true extends { [K in keyof Os]: HasFanOut<Os[K]> }[number] ? NextInput<Last>[] : NextInput<Last>)
  | EarlyResult<Os[number]>;

/**
 * Composes a handler from small steps: each receives what the previous one returned. A step may return
 * {@link fanOut} to run the rest once per item, or {@link done} to answer at once.
 *
 * @example
 * .post('/customers', { body: NewCustomer, response: { 201: Customer } }, steps(normaliseEmail, insertCustomer))
 */
export function steps<I, O1, C>(s1: Step<I, O1, C>): Pipeline<I, Final<[O1], O1>, C>;
export function steps<I, O1, O2, C>(
  s1: Step<I, O1, C>,
  s2: Step<NextInput<O1>, O2, C>,
): Pipeline<I, Final<[O1, O2], O2>, C>;
export function steps<I, O1, O2, O3, C>(
  s1: Step<I, O1, C>,
  s2: Step<NextInput<O1>, O2, C>,
  s3: Step<NextInput<O2>, O3, C>,
): Pipeline<I, Final<[O1, O2, O3], O3>, C>;
export function steps<I, O1, O2, O3, O4, C>(
  s1: Step<I, O1, C>,
  s2: Step<NextInput<O1>, O2, C>,
  s3: Step<NextInput<O2>, O3, C>,
  s4: Step<NextInput<O3>, O4, C>,
): Pipeline<I, Final<[O1, O2, O3, O4], O4>, C>;
export function steps<I, O1, O2, O3, O4, O5, C>(
  s1: Step<I, O1, C>,
  s2: Step<NextInput<O1>, O2, C>,
  s3: Step<NextInput<O2>, O3, C>,
  s4: Step<NextInput<O3>, O4, C>,
  s5: Step<NextInput<O4>, O5, C>,
): Pipeline<I, Final<[O1, O2, O3, O4, O5], O5>, C>;
export function steps<I, O1, O2, O3, O4, O5, O6, C>(
  s1: Step<I, O1, C>,
  s2: Step<NextInput<O1>, O2, C>,
  s3: Step<NextInput<O2>, O3, C>,
  s4: Step<NextInput<O3>, O4, C>,
  s5: Step<NextInput<O4>, O5, C>,
  s6: Step<NextInput<O5>, O6, C>,
): Pipeline<I, Final<[O1, O2, O3, O4, O5, O6], O6>, C>;
export function steps<C>(...list: Step<unknown, unknown, C>[]): Pipeline<unknown, unknown, C> {
  const run = async (input: unknown, ctx: C): Promise<unknown> => {
    const outcome = await runFrom(list, 0, input, ctx);
    return outcome.value;
  };
  return Object.assign(run, { stepNames: list.map((step, index) => step.name || `step${index + 1}`) });
}

/** Guards against a pipeline that keeps fanning out without end. */
const MAX_BRANCHES = 10_000;

interface Outcome {
  value: unknown;
  early: boolean;
}

async function runFrom<C>(list: Step<unknown, unknown, C>[], start: number, input: unknown, ctx: C): Promise<Outcome> {
  let value = input;
  for (let index = start; index < list.length; index++) {
    const step = list[index] as Step<unknown, unknown, C>;
    const result = await timedStep(step, index, value, ctx);
    if (isDone(result)) return { value: result[DONE], early: true };
    if (isFanOut(result)) {
      const items = result[FAN_OUT];
      if (items.length > MAX_BRANCHES) {
        throw new RangeError(`step '${step.name}' fanned out ${items.length} items; the limit is ${MAX_BRANCHES}`);
      }
      const results: unknown[] = [];
      for (const item of items) {
        const branch = await runFrom(list, index + 1, item, ctx);
        if (branch.early) return branch;
        // A branch that fanned out again yields a list of its own: nested fan-outs flatten into one list.
        if (fannedOut.has(branch.value as object)) results.push(...(branch.value as unknown[]));
        else results.push(branch.value);
      }
      fannedOut.add(results);
      return { value: results, early: false };
    }
    value = result;
  }
  return { value, early: false };
}

/**
 * Runs one step, timed as a span under the event's span (`step <name>`): the tracing plugin emits it when the event
 * ends, and without one it is a clock reading and a push onto a list that goes with the event.
 */
async function timedStep<C>(step: Step<unknown, unknown, C>, index: number, value: unknown, ctx: C): Promise<unknown> {
  const tracking = (ctx as { tracking?: Tracking } | undefined)?.tracking;
  if (tracking === undefined) return step(value, ctx);
  const name = `step ${step.name || `step${index + 1}`}`;
  return timeWork(tracking, { name, kind: SpanKind.INTERNAL, attributes: { 'gantry.step': index + 1 } }, async () =>
    step(value, ctx),
  );
}

/** The lists made by fan-outs, told apart from arrays that steps return as plain values. */
const fannedOut = new WeakSet<object>();

function isFanOut(value: unknown): value is FanOut<unknown> {
  return typeof value === 'object' && value !== null && FAN_OUT in value;
}

function isDone(value: unknown): value is Done<unknown> {
  return typeof value === 'object' && value !== null && DONE in value;
}
