import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { EVENT_FIELD } from './codec.ts';

/** A Lua script run with EVALSHA, sent in full (EVAL) only when the server does not have it cached yet. */
export interface RedisScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, lua: string): RedisScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

// Every script reads the server clock, so all consumers share one clock whatever their hosts' clocks say. The call to
// replicate_commands makes that legal on Redis 6.2 (replicas get the effects, not the script); on 7 it is a no-op.
const NOW = `
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Appends entries to a stream, each as `XADD key * event <json>` (the field encodeRedisEntry writes), in argument
 * order, then trims the stream to about the cap (`XTRIM MAXLEN ~`) once. Trimming after the batch rather than with
 * each XADD gives the same approximate cap (nobody sees the stream between the two, the script runs alone) for one
 * command instead of one per entry. Run by the publisher once per stream per batch (see publisher.ts).
 *
 * KEYS: stream. ARGV: the cap ('0' for none), then the `event` field of each entry. Returns how many were appended.
 * An error (WRONGTYPE, OOM) ends the script there: the entries before it stay appended.
 */
export const APPEND_SCRIPT = script(
  'append',
  `
local key = KEYS[1]
for i = 2, #ARGV do
  redis.call('XADD', key, '*', '${EVENT_FIELD}', ARGV[i])
end
if ARGV[1] ~= '0' then redis.call('XTRIM', key, 'MAXLEN', '~', ARGV[1]) end
return #ARGV - 1
`,
);

/**
 * Schedules the redelivery of a pending entry: records its due time in the group's delayed-retry sorted set, if this
 * consumer still owns the entry (another consumer may have claimed it after the claim timeout, and then it is theirs
 * to settle). The entry stays in the group's pending list, so it survives this process, and its idle time is reset
 * without touching its delivery count (XCLAIM JUSTID), so the claim sweep leaves it alone while it waits.
 *
 * KEYS: stream, retry set. ARGV: group, consumer, entry id, delay in ms. Returns 1 when scheduled, 0 when not ours.
 */
export const RETRY_SCRIPT = script(
  'retry',
  `${NOW}
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
local entry = pending[1]
if not entry or entry[2] ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`,
);

/**
 * Takes up to `room` entries for one consumer, in two passes:
 * 1. delayed retries that are due: XCLAIM each (which adds one to its delivery count) and drop it from the retry set;
 * 2. when `sweep` is 1, entries idle longer than the claim timeout (XAUTOCLAIM from `cursor`), the messages of dead or
 *    hung consumers. An entry among them that is waiting out a retry delay longer than the claim timeout is given its
 *    delivery count back (XCLAIM RETRYCOUNT) and left to wait.
 * Each claimed entry comes with its delivery count from XPENDING, so `attempt` is the broker's own count.
 *
 * KEYS: stream, retry set. ARGV: group, consumer, room, sweep (0|1), claim timeout in ms, cursor.
 * Returns { next cursor, { {id, fields, deliveries}... }, earliest due time in the retry set or nil, server time }.
 */
export const CLAIM_SCRIPT = script(
  'claim',
  `${NOW}
local stream, retries, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local room = tonumber(ARGV[3])
local claimed = {}
local function deliveries(id)
  local pending = redis.call('XPENDING', stream, group, id, id, 1)
  if pending[1] then return pending[1][4] end
  return 1
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', retries, '-inf', now, 'LIMIT', 0, room)) do
  redis.call('ZREM', retries, id)
  local entry = redis.call('XCLAIM', stream, group, consumer, 0, id)[1]
  if type(entry) == 'table' and type(entry[2]) == 'table' then
    claimed[#claimed + 1] = { entry[1], entry[2], deliveries(id) }
  end
end
local cursor = ARGV[6]
if ARGV[4] == '1' and #claimed < room then
  local result = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[5], cursor, 'COUNT', room - #claimed)
  cursor = result[1]
  for _, entry in ipairs(result[2]) do
    if type(entry) == 'table' and type(entry[2]) == 'table' then
      local id = entry[1]
      local count = deliveries(id)
      local due = redis.call('ZSCORE', retries, id)
      if due and tonumber(due) > now then
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'RETRYCOUNT', count - 1, 'JUSTID')
      else
        if due then redis.call('ZREM', retries, id) end
        claimed[#claimed + 1] = { id, entry[2], count }
      end
    end
  end
end
local first = redis.call('ZRANGE', retries, 0, 0, 'WITHSCORES')
return { cursor, claimed, first[2] or false, tostring(now) }
`,
);

/**
 * Removes a consumer from its group once it holds no pending entry, so `XINFO CONSUMERS` lists live consumers only.
 * Never removes one that still holds entries: that would drop them from the group's pending list for good.
 *
 * KEYS: stream. ARGV: group, consumer. Returns 1 when removed, 0 when kept.
 */
export const RELEASE_SCRIPT = script(
  'release',
  `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if pending[1] then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
);

/**
 * Runs a script by its SHA1, falling back to sending its text when the server answers NOSCRIPT (first use, or a
 * server restarted or flushed since).
 */
export async function runScript(
  client: Redis,
  script: RedisScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.lua, keys.length, ...keys, ...args);
  }
}
