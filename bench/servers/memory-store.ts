import { randomUUID } from 'node:crypto';
import type { Customer, NewCustomer } from '../../examples/customers/model.ts';

/** Rows kept at most; the oldest go first, except the first one (the row the GET scenario reads). */
const MAX_ROWS = 10_000;

/**
 * An in-memory stand-in for the customers table, so the framework-only scenario measures HTTP work alone. It keeps a
 * bounded number of rows: unbounded, every POST of a run stayed on the heap, and the server that answered more of
 * them paid for it in garbage collection over an ever larger heap, which is not framework work.
 */
export class MemoryCustomers {
  private readonly rows = new Map<string, Customer>();
  private first: string | undefined;
  /**
   * The ids of the rows after the first, in a ring: the next slot holds the oldest, which goes when a new row takes
   * its place. Walking the map from its start to find the oldest instead cost more with every row deleted (the walk
   * steps over each deleted entry until the map is rebuilt), up to 10 µs a POST: a store cost, not framework work.
   */
  private readonly ring: (string | undefined)[] = new Array(MAX_ROWS - 1);
  private next = 0;

  insert(input: NewCustomer): Customer {
    const now = new Date().toISOString();
    const row: Customer = {
      id: randomUUID(),
      name: input.name,
      email: input.email.toLowerCase(),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    this.rows.set(row.id, row);
    if (this.first === undefined) {
      this.first = row.id;
      return row;
    }
    const oldest = this.ring[this.next];
    if (oldest !== undefined) this.rows.delete(oldest);
    this.ring[this.next] = row.id;
    this.next = (this.next + 1) % this.ring.length;
    return row;
  }

  find(id: string): Customer | undefined {
    return this.rows.get(id);
  }
}
