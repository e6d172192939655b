import type { Options } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AmqpBus } from './bus.ts';
import { parseAmqpBusUrl } from './options.ts';
import { AmqpRpcTransport } from './rpc.ts';

/** An amqplib stand-in that records the socket options of each connect and refuses it, as a broker that is down. */
function refusingClient(seen: unknown[]): ConstructorParameters<typeof AmqpBus>[0] {
  return {
    connect: async (_url: string, socketOptions?: Options.Connect & { noDelay?: boolean }) => {
      seen.push(socketOptions);
      throw new Error('connection refused');
    },
  } as unknown as ConstructorParameters<typeof AmqpBus>[0];
}

describe('AMQP connections', () => {
  it('turn Nagle off, on the bus and on the RPC transport', async () => {
    const seen: unknown[] = [];
    const client = refusingClient(seen);
    const url = new URL('amqp://guest:guest@127.0.0.1:1/?connectTimeoutMs=1');
    const bus = new AmqpBus(client, parseAmqpBusUrl(url, 'no-delay'));
    await expect(bus.connect()).rejects.toThrow(/connection refused/);
    const rpc = new AmqpRpcTransport(client, url.href, 'no-delay', 'amqp://127.0.0.1:1');
    await expect(rpc.connection()).rejects.toThrow(/cannot reach the AMQP broker/);
    expect(seen).toHaveLength(2);
    for (const options of seen) expect(options).toMatchObject({ noDelay: true });
  });
});
