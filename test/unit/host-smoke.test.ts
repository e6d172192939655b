import { defineStream, service, t } from 'gantry';
import { startTestHost } from 'gantry/testing';
import { describe, expect, it } from 'vitest';

const greeted = defineStream('greetings.sent', t.Object({ name: t.String() }));

const hello = service({
  name: 'hello',
  version: '1.0.0',
  settings: t.Object({ greeting: t.String({ default: 'hello' }) }),
})
  .emits(greeted)
  .get(
    '/hello/:name',
    { params: t.Object({ name: t.String({ minLength: 2 }) }), response: t.Object({ text: t.String() }) },
    async ({ params }, ctx) => {
      await ctx.emit(greeted, { name: params.name });
      return { text: `${ctx.settings.greeting} ${params.name}` };
    },
  );

describe('a host with one service', () => {
  it('serves a typed route and records what it emits', async () => {
    const app = await startTestHost({ services: [hello], settings: { hello: { greeting: 'hi' } } });
    try {
      const res = await app.request('GET', '/hello/ada');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ text: 'hi ada' });
      expect(app.emitted(greeted)).toEqual([{ name: 'ada' }]);
      const bad = await app.request('GET', '/hello/a');
      expect(bad.status).toBe(400);
      expect(bad.headers['content-type']).toContain('application/problem+json');
      const wrongMethod = await app.request('DELETE', '/hello/ada');
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.allow).toBe('GET');
    } finally {
      await app.stop();
    }
  });
});
