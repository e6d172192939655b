import type { Static, TSchema } from 'typebox';
import { GantryError } from '../errors/gantry-error.ts';
import type { AnyService, RpcSchemas } from '../service/service.ts';
import type { ApiOf, RpcNamesOf, RpcTarget, WorkNamesOf, WorkTarget } from './types.ts';

type RpcAt<S, N extends string> = Extract<ApiOf<S>[`rpc ${N}` & keyof ApiOf<S>], RpcSchemas>;
type WorkAt<S, N extends string> = Extract<ApiOf<S>[`work ${N}` & keyof ApiOf<S>], { input: TSchema }>;

/**
 * An RPC of a service, typed from its definition, for `ctx.request`. The caller imports the service's definition (no
 * code runs from it) and its schemas check the input before sending and the output after.
 *
 * @example
 * const total = await ctx.request(rpcTarget(orders, 'total'), { customerId }, { timeout: 500 });
 */
export function rpcTarget<S extends AnyService, N extends RpcNamesOf<ApiOf<S>> & string>(
  service: S,
  name: N,
): RpcTarget<RpcAt<S, N>['input'], RpcAt<S, N>['output']> {
  const def = service.rpcs.get(name);
  if (!def) {
    throw new GantryError('GANTRY_ERR_CALL_UNKNOWN_TARGET', `service '${service.info.name}' has no RPC '${name}'`);
  }
  return { kind: 'rpc', service: service.info.name, name, schemas: def.schemas as RpcAt<S, N> };
}

/**
 * A work queue of a service, typed from its definition, for `ctx.send`.
 *
 * @example
 * await ctx.send(workTarget(images, 'resize'), { imageId, width: 256 });
 */
export function workTarget<S extends AnyService, N extends WorkNamesOf<ApiOf<S>> & string>(
  service: S,
  name: N,
): WorkTarget<WorkAt<S, N>['input']> {
  const stream = `${service.info.name}.work.${name}`;
  const event = service.events.find((e) => e.kind === 'consumer' && e.stream.name === stream);
  if (event?.kind !== 'consumer') {
    throw new GantryError(
      'GANTRY_ERR_CALL_UNKNOWN_TARGET',
      `service '${service.info.name}' has no work queue '${name}'`,
    );
  }
  return { kind: 'work', service: service.info.name, name, input: event.stream.schema as WorkAt<S, N>['input'] };
}

/** The input type of an RPC target. */
export type RpcInput<T> = T extends RpcTarget<infer I, TSchema> ? Static<I> : never;
/** The output type of an RPC target. */
export type RpcOutput<T> = T extends RpcTarget<TSchema, infer O> ? Static<O> : never;
