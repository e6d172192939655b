export { createKafkaBus, KafkaBus, type KafkaBusInit } from './bus.ts';
export { ATTEMPT_HEADER, NOT_BEFORE_HEADER } from './codec.ts';
export { type KafkaBroker, type KafkaBusOptions, type KafkaSaslMechanism, parseKafkaUrl } from './options.ts';
export { consumerGroupId, retryTopic } from './topics.ts';
