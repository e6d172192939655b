export { AmqpBus, openAmqpBus } from './bus.ts';
export {
  type AmqpBusOptions,
  type AmqpTopologyNames,
  amqpTopologyNames,
  parseAmqpBusUrl,
  retryTierFor,
} from './options.ts';
