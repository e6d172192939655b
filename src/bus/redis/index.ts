export { createRedisStreamsBus, type RedisClientClass, RedisStreamsBus, type RedisStreamsBusInit } from './bus.ts';
export { decodeRedisEntry, encodeRedisEntry, redisRetryKey, redisStreamKey } from './codec.ts';
export { parseRedisStreamsUrl, type RedisConnectionTarget, type RedisStreamsOptions } from './options.ts';
