/** What the customers workload did, for the checks that follow. */
export interface WorkloadStats {
  created: number;
  updated: number;
  emailChanges: number;
  deleted: number;
  errors: string[];
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  // Retry transport errors and 503s a few times: a process restarting is not a failed write.
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (response.status === 503 && attempt < 20) throw new Error('503');
      return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * Creates `customers` customers with `clients` concurrent clients; each customer is then renamed, every third gets a
 * new email, every fourth is deleted. `pause` is awaited between customers so a test can stop the load at a point.
 */
export async function runCustomersWorkload(
  base: () => string,
  options: {
    customers: number;
    clients: number;
    tag: string;
    from?: number;
    between?: (done: number) => Promise<void>;
  },
): Promise<WorkloadStats> {
  const stats: WorkloadStats = { created: 0, updated: 0, emailChanges: 0, deleted: 0, errors: [] };
  let next = options.from ?? 0;
  let done = 0;
  const expect = (what: string, status: number, wanted: number): boolean => {
    if (status === wanted) return true;
    stats.errors.push(`${what}: ${status}`);
    return false;
  };
  const client = async (): Promise<void> => {
    const end = (options.from ?? 0) + options.customers;
    for (let i = next++; i < end; i = next++) {
      const email = `c${i}-${options.tag}@example.com`;
      const created = await call(base(), 'POST', '/customers', { name: `Customer ${i}`, email });
      if (!expect(`create ${i}`, created.status, 201)) continue;
      stats.created++;
      const { id } = created.json as { id: string };
      if (
        expect(
          `rename ${i}`,
          (await call(base(), 'PATCH', `/customers/${id}`, { name: `Customer ${i} renamed` })).status,
          200,
        )
      )
        stats.updated++;
      if (
        i % 3 === 0 &&
        expect(`email ${i}`, (await call(base(), 'PATCH', `/customers/${id}`, { email: `new-${email}` })).status, 200)
      ) {
        stats.updated++;
        stats.emailChanges++;
      }
      if (i % 4 === 0 && expect(`delete ${i}`, (await call(base(), 'DELETE', `/customers/${id}`)).status, 204))
        stats.deleted++;
      done++;
      await options.between?.(done);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  return stats;
}
