import { MemoryBus } from '../../src/bus/memory/index.ts';
import { runBusConformance } from '../conformance/bus-conformance.ts';

// One MemoryBus stands for one broker: every "client" the suite opens shares it, as processes share a server.
const broker = new MemoryBus({ claimTimeoutMs: 800 });
runBusConformance({
  name: 'memory',
  create: async () => sharedClient(broker),
  claimTimeoutMs: 800,
});

function sharedClient(bus: MemoryBus): MemoryBus {
  return Object.create(bus, { close: { value: async () => undefined } }) as MemoryBus;
}
