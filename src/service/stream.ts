import type { Static, TSchema } from 'typebox';

/** Options of {@link defineStream}. */
export interface StreamOptions<S extends TSchema> {
  /** What the stream carries, shown in the AsyncAPI document. */
  description?: string;
  /** The partition key of a message: messages with one key keep their order where the broker can. */
  key?: (data: Static<S>) => string;
}

/** A named, typed stream of messages: what services emit to and consume from. */
export interface StreamDef<S extends TSchema = TSchema> {
  readonly name: string;
  readonly schema: S;
  readonly description?: string;
  readonly key?: (data: Static<S>) => string;
}

const STREAM_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

/**
 * Declares a stream. Names are dotted lower-case words (`customers.changed`); `<name>.dlq` is its dead-letter stream.
 *
 * @example
 * export const customerChanged = defineStream('customers.changed', CustomerChange, { key: (c) => c.id });
 */
export function defineStream<S extends TSchema>(name: string, schema: S, options: StreamOptions<S> = {}): StreamDef<S> {
  if (!STREAM_NAME.test(name)) {
    throw new TypeError(`stream name '${name}' must be dotted lower-case words, like 'customers.changed'`);
  }
  return { name, schema, ...options };
}
