import { and, count, desc, eq, ilike, isNull, type SQL, sql } from 'drizzle-orm';
import { conflict } from 'gantry';
import type { Database } from 'gantry/db';
import type { Customer, CustomerPatch, CustomerQuery, NewCustomer } from './model.ts';
import { type CustomerRow, customers } from './schema.ts';

/** The customers database, or a transaction of it. */
export type CustomersDb = Database<{ customers: typeof customers }>['db'];

const live = isNull(customers.deletedAt);

/** The row as the API shows it. */
export function toCustomer(row: CustomerRow): Customer {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Inserts a customer; a taken email is a 409. */
export async function insertCustomer(db: CustomersDb, input: NewCustomer): Promise<CustomerRow> {
  const [row] = await withConflict(input.email, () =>
    db.insert(customers).values({ name: input.name, email: input.email.toLowerCase() }).returning(),
  );
  return row as CustomerRow;
}

/** The live customer with this id, or undefined; `lock` holds the row until the transaction ends. */
export async function findCustomer(
  db: CustomersDb,
  id: string,
  options: { lock?: boolean } = {},
): Promise<CustomerRow | undefined> {
  const query = db
    .select()
    .from(customers)
    .where(and(eq(customers.id, id), live))
    .limit(1);
  const [row] = options.lock ? await query.for('update') : await query;
  return row;
}

/** One page of live customers, newest first, filtered by parts of name and email. */
export async function listCustomers(
  db: CustomersDb,
  query: CustomerQuery & { page: number; pageSize: number },
): Promise<{ rows: CustomerRow[]; total: number }> {
  const filters: SQL[] = [live];
  if (query.name) filters.push(ilike(customers.name, `%${escapeLike(query.name)}%`));
  if (query.email) filters.push(ilike(customers.email, `%${escapeLike(query.email)}%`));
  const where = and(...filters);
  const [rows, [totals]] = await Promise.all([
    db
      .select()
      .from(customers)
      .where(where)
      .orderBy(desc(customers.createdAt), desc(customers.id))
      .limit(query.pageSize)
      .offset((query.page - 1) * query.pageSize),
    db.select({ total: count() }).from(customers).where(where),
  ]);
  return { rows, total: totals?.total ?? 0 };
}

/** Applies a full or partial change to a live customer; undefined when there is none. */
export async function updateCustomer(
  db: CustomersDb,
  id: string,
  change: CustomerPatch,
): Promise<CustomerRow | undefined> {
  const values: Partial<typeof customers.$inferInsert> = {};
  if (change.name !== undefined) values.name = change.name;
  if (change.email !== undefined) values.email = change.email.toLowerCase();
  const [row] = await withConflict(change.email ?? '', () =>
    db
      .update(customers)
      .set({ ...values, version: sql`${customers.version} + 1`, updatedAt: sql`now()` })
      .where(and(eq(customers.id, id), live))
      .returning(),
  );
  return row;
}

/** Soft-deletes a live customer (its version grows too); undefined when there was none. */
export async function deleteCustomer(db: CustomersDb, id: string): Promise<CustomerRow | undefined> {
  const [row] = await db
    .update(customers)
    .set({ deletedAt: sql`now()`, version: sql`${customers.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(customers.id, id), live))
    .returning();
  return row;
}

/** Every customer, deleted ones included, in id order: the snapshot a replica is rebuilt or verified from. */
export async function snapshotCustomers(
  db: CustomersDb,
  afterId: string | undefined,
  limit: number,
): Promise<CustomerRow[]> {
  const where = afterId ? sql`${customers.id} > ${afterId}` : undefined;
  return db.select().from(customers).where(where).orderBy(customers.id).limit(limit);
}

/** Turns a unique violation on the email into a 409 that names the email. */
async function withConflict<T>(email: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`a customer with email '${email.toLowerCase()}' already exists`);
    throw error;
  }
}

function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
