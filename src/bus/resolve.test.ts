import { describe, expect, it } from 'vitest';
import { busSchemes, resolveBus } from './resolve.ts';

describe('the bus resolver', () => {
  it('names every valid scheme when a scheme is unknown', async () => {
    await expect(resolveBus('mqtt://127.0.0.1:1883', { instanceId: 'x' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
      message: expect.stringContaining('memory:, amqp:'),
    });
    expect(busSchemes()).toEqual(
      expect.arrayContaining(['memory:', 'pglite:', 'postgres:', 'redis:', 'nats:', 'amqp:', 'kafka:']),
    );
  });

  it('refuses what is not a URL', async () => {
    await expect(resolveBus('not a url', { instanceId: 'x' })).rejects.toMatchObject({
      code: 'GANTRY_ERR_BUS_UNKNOWN_SCHEME',
    });
  });

  it('opens the in-memory bus', async () => {
    const bus = await resolveBus('memory:', { instanceId: 'x' });
    expect(bus.kind).toBe('memory');
    await bus.close();
  });
});
