import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, type GantryProcess, killHard, startGantry, stopGently } from '../support/processes.ts';
import { runCustomersWorkload } from '../support/workload.ts';

interface Record {
  id: string;
  name: string;
  email: string;
  version: number;
  deletedAt: string | null;
}

describe('the example system in one process on embedded defaults', () => {
  it('loses nothing when killed with SIGKILL midway and restarted', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'gantry-laptop-'));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // No DATABASE_URL, GANTRY_BUS or SMTP_URL: PGlite databases, the PGlite bus and the local mailbox.
    const env = {
      GANTRY_ENV: 'dev',
      GANTRY_DATA_DIR: dataDir,
      PORT: String(port),
      REPLICATOR__SOURCE_URL: base,
      DATABASE_URL: '',
      GANTRY_BUS: '',
      SMTP_URL: '',
      REPLICA_URL: '',
    };
    let proc: GantryProcess = await startGantry('laptop', [], env, 300_000);
    try {
      const first = await runCustomersWorkload(() => base, { customers: 500, clients: 20, tag: 'laptop' });
      // Killed with the outbox, the bus and both consumers still busy with the first half.
      await killHard(proc);
      proc = await startGantry('laptop-again', [], env, 300_000);
      const second = await runCustomersWorkload(() => base, { customers: 500, clients: 20, tag: 'laptop', from: 500 });
      expect([...first.errors, ...second.errors]).toEqual([]);

      const source: Record[] = [];
      for (let after: string | null = null, first = true; first || after; first = false) {
        const page = (await (
          await fetch(`${base}/customers-snapshot?limit=1000${after ? `&after=${after}` : ''}`)
        ).json()) as { items: Record[]; next: string | null };
        source.push(...page.items);
        after = page.next;
      }
      expect(source).toHaveLength(1_000);
      const expectedMails =
        first.created + second.created + first.emailChanges + second.emailChanges + first.deleted + second.deleted;

      const differences = async (): Promise<number> => {
        let count = 0;
        for (const record of source) {
          const response = await fetch(`${base}/replica/customers/${record.id}`);
          if (record.deletedAt !== null) {
            if (response.status !== 404) count++;
            continue;
          }
          const copy = response.status === 200 ? ((await response.json()) as Record) : undefined;
          if (!copy || copy.version !== record.version || copy.name !== record.name || copy.email !== record.email)
            count++;
        }
        return count;
      };
      const mails = async (): Promise<Map<string, number>> => {
        const text = await readFile(path.join(dataDir, 'notifier', 'mailbox.jsonl'), 'utf8').catch(() => '');
        const counts = new Map<string, number>();
        for (const line of text.split('\n').filter(Boolean)) {
          const id = (JSON.parse(line) as { id: string }).id;
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
        return counts;
      };
      const deadline = Date.now() + 180_000;
      while (Date.now() < deadline && ((await mails()).size < expectedMails || (await differences()) > 0)) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
      expect(await differences()).toBe(0);
      const counts = await mails();
      expect(counts.size).toBe(expectedMails);
      expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    } finally {
      await stopGently(proc);
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 600_000);
});
