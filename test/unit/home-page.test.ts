import { service } from 'gantry';
import { startTestHost } from 'gantry/testing';
import { describe, expect, it } from 'vitest';

describe('the root of a host', () => {
  it('sends browsers to the home page and answers JSON to everyone else', async () => {
    const app = await startTestHost({ services: [service({ name: 'plain', version: '1.0.0' })], home: '/app/' });
    try {
      const browser = await app.request('GET', '/', undefined, { accept: 'text/html,application/xhtml+xml' });
      expect(browser.status).toBe(302);
      expect(browser.headers.location).toBe('/app/');
      const api = await app.request('GET', '/', undefined, { accept: 'application/json' });
      expect(api.status).toBe(200);
      expect(api.body).toMatchObject({ services: [{ name: 'plain', version: '1.0.0' }] });
    } finally {
      await app.stop();
    }
  });
});
