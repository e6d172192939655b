// Generated hostile input against the example services: thousands of requests (methods, paths, query strings,
// headers, bodies) and stream messages (any JSON as data). Nothing may answer 500, crash, hang or grow without bound;
// every refused message must reach the dead-letter stream, and the host must stay healthy after.
import fc from 'fast-check';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';
import { customerChanged, notificationRequested } from '../../examples/customers/streams.ts';
import { notifier } from '../../examples/notifier/service.ts';
import { replicator } from '../../examples/replicator/service.ts';

const ID = '0b5f6a3c-8e2d-4f7a-9c1b-000000000001';

/** Path templates of the example services, filled with generated segments, beside paths made of anything. */
const paths = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        '/customers',
        '/customers/{}',
        '/customers-snapshot',
        '/mailbox',
        '/replica/customers/{}',
        '/replica/status',
        '/health/live',
        '/health/ready',
        '/openapi.json',
      ),
      fc.oneof(fc.constant(ID), fc.uuid(), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 })),
    )
    .map(([template, segment]) => template.replace('{}', encodeURIComponent(segment))),
  fc.webPath().map((path) => (path.startsWith('/') ? path : `/${path}`)),
  fc.string({ maxLength: 80 }).map((raw) => `/${encodeURIComponent(raw)}`),
);

const queries = fc.oneof(
  fc.constant(''),
  fc
    .dictionary(
      fc.constantFrom('limit', 'offset', 'name', 'email', 'cursor', 'deleted', 'x'),
      fc.oneof(fc.integer().map(String), fc.string({ maxLength: 30 }), fc.constant('')),
      { maxKeys: 4 },
    )
    .map((query) => `?${new URLSearchParams(query).toString()}`),
  fc.webQueryParameters().map((raw) => `?${raw}`),
);

/** Header names and values a client can send on the wire (tokens, visible ASCII). */
const headerName = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
  .filter((name) => name !== 'content-length' && name !== 'host');
const headers = fc.dictionary(headerName, fc.stringMatching(/^[\x21-\x7e]{0,60}$/), { maxKeys: 5 });

const bodies = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value)),
  fc.record({ name: fc.string({ maxLength: 300 }), email: fc.string({ maxLength: 80 }) }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
);

describe('generated hostile input against the example services', () => {
  let app: TestHost;
  const deadLettered = new Map<string, number>();
  beforeAll(async () => {
    app = await startTestHost({
      services: [customers, notifier, replicator],
      config: { host: { bodyLimitBytes: 16_384 } },
      plugins: [
        {
          name: 'count-dead-letters',
          register: (api) =>
            api.hook('onDeadLetter', (info) => deadLettered.set(info.stream, (deadLettered.get(info.stream) ?? 0) + 1)),
        },
      ],
    });
  });
  afterAll(async () => app?.stop());

  it('answers thousands of generated requests without a 500, each refusal as problem+json', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
        paths,
        queries,
        headers,
        bodies,
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
        async (method, path, query, extra, body, contentType) => {
          sent++;
          const response = await app.host.inject({
            method: method as 'GET',
            url: `${path}${query}`,
            headers: { ...extra, ...(contentType && body !== undefined ? { 'content-type': contentType } : {}) },
            ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { payload: body } : {}),
          });
          expect(response.statusCode, `${method} ${path}${query}: ${response.body.slice(0, 300)}`).toBeLessThan(500);
          if (response.statusCode >= 400 && method !== 'HEAD') {
            expect(response.headers['content-type'], `${method} ${path}${query}`).toContain('application/problem+json');
          }
        },
      ),
      { numRuns: 3_000 },
    );
    expect(sent).toBeGreaterThanOrEqual(3_000);
    const live = await app.request('GET', '/health/live');
    expect(live.status).toBe(200);
    // Generous: a leak of what 3,000 requests carry would show as far more.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);

  it('dead-letters every generated message its consumers cannot accept, and keeps consuming', async () => {
    const streams = [customerChanged.name, notificationRequested.name];
    const published = { [customerChanged.name]: 0, [notificationRequested.name]: 0 };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...streams), fc.jsonValue({ maxDepth: 5 }), async (stream, data) => {
        published[stream] = (published[stream] ?? 0) + 1;
        await app.publish(stream, data);
      }),
      { numRuns: 500 },
    );
    // Random JSON practically never holds every required field of a stream's schema, so each generated message is
    // refused by the one consumer group of its stream and must reach the dead-letter stream: none may vanish.
    for (const stream of streams) {
      await app.waitFor(
        () => deadLettered.get(stream) === published[stream],
        `every generated message on ${stream} dead-lettered by its one consumer group`,
        60_000,
      );
    }
    // Still healthy, and still consuming: a real change goes through the whole chain.
    const created = await app.request('POST', '/customers', { name: 'After Fuzz', email: 'after.fuzz@example.com' });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    await app.waitFor(
      async () => (await app.request('GET', `/replica/customers/${id}`)).status === 200,
      'the replica of a customer created after the generated messages',
      30_000,
    );
    expect((await app.request('GET', '/health/ready')).status).toBe(200);
  }, 120_000);
});
