/**
 * The offsets of one partition between fetch and commit. Kafka keeps one committed offset per partition and group,
 * so a message may only be committed once it and every message before it in the partition are settled; handlers
 * settle out of order, so this tracks which received offsets are settled and how far the settled run from the start
 * reaches.
 *
 * Offsets are compared in the order they were received, not as consecutive integers: a partition has gaps where
 * transaction markers or compacted records were, and those never arrive.
 *
 * @example
 * const offsets = new PartitionOffsets();
 * offsets.accept(10n); offsets.accept(11n); offsets.accept(13n);
 * offsets.settle(11n); offsets.toCommit(); // undefined: 10 is not settled yet
 * offsets.settle(10n); offsets.toCommit(); // 12n: the next offset to read after 11
 */
export class PartitionOffsets {
  /** Accepted offsets from the oldest not yet in the settled run; `head` indexes the oldest. */
  #order: bigint[] = [];
  #head = 0;
  /** Settled offsets that are not yet part of the settled run (something before them is still open). */
  readonly #settledAhead = new Set<bigint>();
  #last: bigint | undefined;
  /** The offset to commit: one past the last offset of the settled run. */
  #frontier: bigint | undefined;
  #committed: bigint | undefined;

  /**
   * Records a message taken from the partition. Returns false for an offset at or below the last one accepted, which
   * is a message fetched again (the client re-reads from the committed offset after every rebalance) and must not be
   * handled twice.
   */
  accept(offset: bigint): boolean {
    if (this.#last !== undefined && offset <= this.#last) return false;
    this.#last = offset;
    this.#order.push(offset);
    return true;
  }

  /** Marks an accepted offset as settled (acked, or handed on to the retry topic). Unknown offsets are ignored. */
  settle(offset: bigint): void {
    const head = this.#order[this.#head];
    if (head === undefined || offset < head) return;
    if (offset !== head) {
      if (this.#isOpen(offset)) this.#settledAhead.add(offset);
      return;
    }
    this.#advance(offset);
    for (
      let next = this.#order[this.#head];
      next !== undefined && this.#settledAhead.delete(next);
      next = this.#order[this.#head]
    ) {
      this.#advance(next);
    }
    this.#compact();
  }

  /** The offset to commit now (one past the settled run), or undefined when nothing new is settled. */
  toCommit(): bigint | undefined {
    if (this.#frontier === undefined) return undefined;
    if (this.#committed !== undefined && this.#frontier <= this.#committed) return undefined;
    return this.#frontier;
  }

  /** Records that `offset` was committed to the group. */
  markCommitted(offset: bigint): void {
    if (this.#committed === undefined || offset > this.#committed) this.#committed = offset;
  }

  /** Accepted messages not yet settled (in hand or still queued). */
  get open(): number {
    return this.#order.length - this.#head - this.#settledAhead.size;
  }

  /** True when settled work has not reached the group yet: another member taking the partition would repeat it. */
  get uncommitted(): boolean {
    return this.toCommit() !== undefined || this.#settledAhead.size > 0;
  }

  /** True when `offset` was accepted and is past the settled run; the window is sorted, so a binary search. */
  #isOpen(offset: bigint): boolean {
    let low = this.#head;
    let high = this.#order.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.#order[middle] as bigint;
      if (value === offset) return true;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }

  #advance(offset: bigint): void {
    this.#head++;
    this.#frontier = offset + 1n;
  }

  /** Drops the settled run from the array now and then, so it stays as long as the open window. */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
