import type { Redis } from 'ioredis';

/** Deletes every key under `prefix` (a test's own namespace on the shared server), a SCAN page at a time. */
export async function deleteKeysUnder(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
