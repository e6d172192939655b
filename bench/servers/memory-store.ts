import { randomUUID } from 'node:crypto';
import type { Customer, NewCustomer } from '../../examples/customers/model.ts';

/** An in-memory stand-in for the customers table, so the framework-only scenario measures HTTP work alone. */
export class MemoryCustomers {
  private readonly rows = new Map<string, Customer>();

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
    return row;
  }

  find(id: string): Customer | undefined {
    return this.rows.get(id);
  }
}
