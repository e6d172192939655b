import { randomUUID } from 'node:crypto';
import { service, t } from 'gantry';
import { startTestHost, type TestHost } from 'gantry/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NAMESPACE = 'gantry-rate-limit:';

describe('rate limits counted in Redis', () => {
  const hosts: TestHost[] = [];
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  // A path of its own for this run, so counts of other runs cannot mix in.
  const path = `/limited-${randomUUID().slice(0, 8)}`;
  const limited = service({ name: 'limited', version: '1.0.0' }).get(
    path,
    { auth: 'public', rateLimit: { max: 3, windowMs: 1_000 }, response: t.Object({ ok: t.Boolean() }) },
    async () => ({ ok: true }),
  );

  beforeAll(async () => {
    await redis.connect();
    for (let i = 0; i < 2; i++) {
      hosts.push(
        await startTestHost({ services: [limited], config: { host: { rateLimit: { redisUrl: REDIS_URL } } } }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    const keys = await redis.keys(`${NAMESPACE}GET${path}-*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('shares one count between instances, answers 429, then lets the client in after the window', async () => {
    const [a, b] = hosts as [TestHost, TestHost];
    expect((await a.request('GET', path)).status).toBe(200);
    expect((await b.request('GET', path)).status).toBe(200);
    expect((await a.request('GET', path)).status).toBe(200);
    const refused = await b.request('GET', path);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_RATE_LIMITED' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(await redis.keys(`${NAMESPACE}GET${path}-*`)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await a.request('GET', path)).status).toBe(200);
  });
});
