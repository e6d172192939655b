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
    this.first ??= row.id;
    if (this.rows.size >= MAX_ROWS) {
      for (const id of this.rows.keys()) {
        if (id === this.first) continue;
        this.rows.delete(id);
        break;
      }
    }
    this.rows.set(row.id, row);
    return row;
  }

  find(id: string): Customer | undefined {
    return this.rows.get(id);
  }
}
