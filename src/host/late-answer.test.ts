import { service, t } from 'gantry';
import { startTestHost } from 'gantry/testing';
import { describe, expect, it } from 'vitest';

/** Blocks the event loop, so no timer (the run's deadline included) can fire meanwhile. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

const late = service({ name: 'late', version: '1.0.0' }).get(
  '/late',
  { timeout: 50, response: t.Object({ ok: t.Boolean() }) },
  async () => {
    await Promise.resolve();
    busy(120);
    return { ok: true };
  },
);

describe('an answer past the run deadline', () => {
  it('is a timeout (504) even when the deadline timer has not fired yet', async () => {
    const app = await startTestHost({ services: [late] });
    try {
      const res = await app.request('GET', '/late');
      expect(res.status).toBe(504);
      expect(res.body).toMatchObject({ code: 'GANTRY_ERR_EVENT_TIMEOUT' });
    } finally {
      await app.stop();
    }
  });
});
