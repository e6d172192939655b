export { type NatsClientModules, NatsJetStreamBus, type NatsJetStreamConnection, openNatsJetStreamBus } from './bus.ts';
export { decodeNatsMessage, toNatsHeaders } from './codec.ts';
export {
  type NatsJetStreamOptions,
  type NatsNames,
  type NatsRetention,
  type NatsStorage,
  natsDurableName,
  natsNames,
  parseNatsUrl,
} from './options.ts';
