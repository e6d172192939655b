import type { CustomerRecord } from '../customers/model.ts';
import type { ReplicaStore } from './store.ts';

/** Reads the source's full snapshot page by page (`GET /customers-snapshot`). */
export async function* sourceSnapshot(sourceUrl: string, signal: AbortSignal): AsyncGenerator<CustomerRecord> {
  let after: string | null = null;
  do {
    const url = new URL('/customers-snapshot', sourceUrl);
    url.searchParams.set('limit', '500');
    if (after) url.searchParams.set('after', after);
    const response = await fetch(url, { signal });
    if (!response.ok)
      throw new Error(`the source answered ${response.status} to ${url.pathname}: ${await response.text()}`);
    const page = (await response.json()) as { items: CustomerRecord[]; next: string | null };
    yield* page.items;
    after = page.next;
  } while (after);
}

/** Replaces the replica with the source's snapshot; returns how many rows it wrote. */
export async function rebuildReplica(
  store: ReplicaStore,
  sourceUrl: string,
  signal: AbortSignal,
): Promise<{ rows: number }> {
  await store.clear();
  let rows = 0;
  // Version-guarded writes: a change delivered while the rebuild runs is neither lost nor undone by an older snapshot row.
  for await (const record of sourceSnapshot(sourceUrl, signal)) {
    await store.upsert(record);
    rows++;
  }
  return { rows };
}

/** The differences between replica and source, counted. */
export interface VerifyReport {
  checked: number;
  /** In the source, not in the replica. */
  missing: number;
  /** In both, with another version, field or deleted state. */
  different: number;
  /** In the replica, not in the source. */
  extra: number;
  /** Up to 20 ids of rows that differ, for a look. */
  examples: string[];
}

/** Compares every source record with the replica, row by row. */
export async function verifyReplica(
  store: ReplicaStore,
  sourceUrl: string,
  signal: AbortSignal,
): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, missing: 0, different: 0, extra: 0, examples: [] };
  const seen = new Set<string>();
  for await (const record of sourceSnapshot(sourceUrl, signal)) {
    report.checked++;
    seen.add(record.id);
    const row = await store.get(record.id);
    const note = (): void => {
      if (report.examples.length < 20) report.examples.push(record.id);
    };
    if (!row) {
      report.missing++;
      note();
    } else if (
      row.version !== record.version ||
      row.name !== record.name ||
      row.email !== record.email ||
      (row.deletedAt === null) !== (record.deletedAt === null)
    ) {
      report.different++;
      note();
    }
  }
  for (
    let after: string | undefined, page = await store.page(undefined, 500);
    page.length > 0;
    page = await store.page(after, 500)
  ) {
    for (const row of page) if (!seen.has(row.id)) report.extra++;
    after = page.at(-1)?.id;
  }
  return report;
}
