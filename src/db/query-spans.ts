import { SpanKind } from '@opentelemetry/api';
import { currentEventTracking, recordTimedWork } from '../tracking/work-spans.ts';

/** The longest statement text a query span carries. */
const MAX_TEXT = 1_000;

type QueryFunction = (...args: unknown[]) => unknown;

/**
 * Makes `target[method]` (a client's `query` or `exec`) time each call made while an event runs, as a child span of
 * the event: `db <operation>` with the statement's text (its parameters are never recorded). Calls made outside an
 * event (the outbox relay, job polling, migrations) are not timed, nor calls that answer through a callback: node-postgres'
 * pool runs its `query` that way on a client, and the pool's own `query` is the one timed. Without a tracing plugin a
 * timed call costs two clock readings and a push onto a list that goes with the event.
 */
export function timeQueries(target: object, method: 'query' | 'exec'): void {
  const original = (target as Record<string, unknown>)[method];
  if (typeof original !== 'function') return;
  const call = original as QueryFunction;
  const timed = function (this: unknown, ...args: unknown[]): unknown {
    const tracking = currentEventTracking();
    if (tracking === undefined || typeof args[args.length - 1] === 'function') return call.apply(this, args);
    const text = statementText(args[0]);
    const operation = operationOf(text);
    const startMs = Date.now();
    const record = (error?: unknown): void => {
      recordTimedWork(tracking, {
        name: `db ${operation}`,
        kind: SpanKind.CLIENT,
        startMs,
        attributes: {
          'db.system.name': 'postgresql',
          'db.operation.name': operation,
          'db.query.text': text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text,
        },
        ...(error === undefined ? {} : { error }),
      });
    };
    let result: unknown;
    try {
      result = call.apply(this, args);
    } catch (error) {
      record(error);
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          record();
          return value;
        },
        (error: unknown) => {
          record(error ?? new Error('query failed'));
          throw error;
        },
      );
    }
    record();
    return result;
  };
  (target as Record<string, unknown>)[method] = timed;
}

/** The SQL of a client call's first argument: the string itself, or a query config's `text`. */
function statementText(first: unknown): string {
  if (typeof first === 'string') return first;
  const text = (first as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : '';
}

/** The statement's first keyword, lower-cased (`select`, `insert`, `with`, ...), or `query` when there is none. */
function operationOf(text: string): string {
  const match = /^\s*([A-Za-z]+)/.exec(text);
  return match ? (match[1] as string).toLowerCase() : 'query';
}
