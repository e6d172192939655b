export { MemoryBus } from './bus.ts';
