import type { Customer } from '../customers/model.ts';
import type { CustomerChange } from '../customers/streams.ts';

/** A customer as the replica holds it: the last version seen, deleted ones kept as tombstones. */
export interface ReplicaRow extends Customer {
  deletedAt: string | null;
  appliedAt: string;
}

/** What the replica knows about itself. */
export interface ReplicaStatus {
  rows: number;
  deleted: number;
  lastApplied: { customerId: string; version: number; at: string } | null;
}

/**
 * The replica's storage. Every write is version-guarded: a change is applied only when its version is newer than the
 * row's, so duplicates and out-of-order deliveries converge to the source.
 */
export interface ReplicaStore {
  /** `mysql` or `postgres` (PGlite or a server). */
  readonly kind: string;
  /** Applies a record at a version; false when the replica already had that version or a newer one. */
  upsert(row: Omit<ReplicaRow, 'appliedAt'>): Promise<boolean>;
  get(id: string): Promise<ReplicaRow | undefined>;
  /** Rows in id order after `afterId`, for verification. */
  page(afterId: string | undefined, limit: number): Promise<ReplicaRow[]>;
  status(): Promise<ReplicaStatus>;
  /** Empties the replica (before a rebuild). */
  clear(): Promise<void>;
}

/** The replica row a change leads to: the record after it, or the one before it marked deleted. */
export function rowOfChange(change: CustomerChange): Omit<ReplicaRow, 'appliedAt'> {
  const record = change.after ?? change.before;
  if (!record) throw new Error(`change ${change.customerId}@${change.version} carries no record`);
  return {
    ...record,
    version: change.version,
    deletedAt: change.operation === 'deleted' ? change.changedAt : null,
  };
}
