import { describe, expect, it } from 'vitest';
import { PartitionOffsets } from './offsets.ts';

function accepted(...offsets: bigint[]): PartitionOffsets {
  const tracker = new PartitionOffsets();
  for (const offset of offsets) tracker.accept(offset);
  return tracker;
}

describe('PartitionOffsets (the per-partition run of settled offsets)', () => {
  it('commits nothing until the oldest message is settled', () => {
    const offsets = accepted(0n, 1n, 2n);
    offsets.settle(1n);
    offsets.settle(2n);
    expect(offsets.toCommit()).toBeUndefined();
    offsets.settle(0n);
    expect(offsets.toCommit()).toBe(3n);
  });

  it('advances one past the last settled offset of the run, in any settle order', () => {
    const offsets = accepted(10n, 11n, 12n, 13n, 14n);
    offsets.settle(13n);
    offsets.settle(10n);
    expect(offsets.toCommit()).toBe(11n);
    offsets.settle(12n);
    expect(offsets.toCommit()).toBe(11n);
    offsets.settle(11n);
    expect(offsets.toCommit()).toBe(14n);
    offsets.settle(14n);
    expect(offsets.toCommit()).toBe(15n);
  });

  it('follows the offsets received, so gaps (transaction markers, compaction) never block the run', () => {
    const offsets = accepted(5n, 7n, 10n);
    offsets.settle(7n);
    offsets.settle(5n);
    expect(offsets.toCommit()).toBe(8n);
    offsets.settle(10n);
    expect(offsets.toCommit()).toBe(11n);
  });

  it('ignores offsets it never accepted, settled twice, or already committed', () => {
    const offsets = accepted(5n, 7n);
    offsets.settle(6n);
    offsets.settle(99n);
    offsets.settle(4n);
    expect(offsets.open).toBe(2);
    offsets.settle(5n);
    offsets.settle(5n);
    expect(offsets.open).toBe(1);
    expect(offsets.toCommit()).toBe(6n);
  });

  it('refuses a message fetched again at or below the last accepted offset', () => {
    const offsets = accepted(3n, 4n);
    expect(offsets.accept(4n)).toBe(false);
    expect(offsets.accept(2n)).toBe(false);
    expect(offsets.accept(5n)).toBe(true);
  });

  it('offers each commit once, and again only after more is settled', () => {
    const offsets = accepted(0n, 1n);
    offsets.settle(0n);
    expect(offsets.toCommit()).toBe(1n);
    offsets.markCommitted(1n);
    expect(offsets.toCommit()).toBeUndefined();
    expect(offsets.uncommitted).toBe(false);
    offsets.settle(1n);
    expect(offsets.uncommitted).toBe(true);
    expect(offsets.toCommit()).toBe(2n);
  });

  it('counts settled work past an open message as uncommitted', () => {
    const offsets = accepted(0n, 1n);
    offsets.settle(1n);
    expect(offsets.toCommit()).toBeUndefined();
    expect(offsets.uncommitted).toBe(true);
    expect(offsets.open).toBe(1);
  });

  it('keeps up over a long run settled out of order', () => {
    const offsets = new PartitionOffsets();
    const count = 10_000;
    for (let i = 0; i < count; i++) offsets.accept(BigInt(i));
    // Settle in blocks of 100, each block back to front.
    for (let block = 0; block < count; block += 100) {
      for (let i = block + 99; i >= block; i--) offsets.settle(BigInt(i));
      expect(offsets.toCommit()).toBe(BigInt(block + 100));
    }
    expect(offsets.open).toBe(0);
  });
});
