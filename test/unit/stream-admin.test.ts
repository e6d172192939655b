import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defineStream, service, t } from 'gantry';
import { startTestHost } from 'gantry/testing';
import { describe, expect, it } from 'vitest';

const jobs = defineStream('admin.jobs', t.Object({ n: t.Integer() }));
let failing = true;
const handled: number[] = [];
const worker = service({ name: 'worker', version: '1.0.0' })
  .emits(jobs)
  .on(jobs, { maxAttempts: 2, backoffMs: 5 }, async (job) => {
    if (failing) throw new Error(`cannot do ${job.n} yet`);
    handled.push(job.n);
  });

describe('stream administration', () => {
  it('lists streams with lag and dead letters, shows dead letters, and replays them', async () => {
    const app = await startTestHost({ services: [worker] });
    try {
      await app.publish(jobs, { n: 1 });
      await app.publish(jobs, { n: 2 });
      await app.waitFor(() => app.host.counters.of('admin.jobs', 'worker').deadLettered === 2, 'two dead letters');

      const listed = await app.request('GET', '/_gantry/streams');
      expect(listed.status).toBe(200);
      expect(listed.body).toMatchObject({
        bus: 'memory',
        streams: [{ stream: 'admin.jobs', deadLetters: 2, groups: [{ group: 'worker', deadLettered: 2, lag: 0 }] }],
      });

      const letters = await app.request('GET', '/_gantry/streams/admin.jobs/dead-letters?max=10');
      expect(
        (letters.body as { reason: string; original: { data: { n: number } } }[]).map((l) => l.original.data.n).sort(),
      ).toEqual([1, 2]);
      expect((letters.body as { reason: string }[])[0]?.reason).toContain('cannot do');

      failing = false;
      const replay = await app.request('POST', '/_gantry/streams/admin.jobs/dead-letters/replay');
      expect((replay.body as { replayed: string[] }).replayed).toHaveLength(2);
      await app.waitFor(() => handled.length === 2, 'the replayed messages to be handled');
      expect(handled.sort()).toEqual([1, 2]);
      expect(
        ((await app.request('GET', '/_gantry/streams')).body as { streams: { deadLetters: number }[] }).streams[0]
          ?.deadLetters,
      ).toBe(0);
      expect((await app.request('GET', '/_gantry/streams/NOT%20A%20STREAM/dead-letters')).status).toBe(400);
    } finally {
      await app.stop();
    }
  });
});

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;

describe('gantry streams', () => {
  it('lists streams and tails new messages of a running host', async () => {
    const app = await startTestHost({ services: [worker], config: { host: { address: '127.0.0.1' } } });
    try {
      const url = await app.host.listen();
      const listed = await run(process.execPath, ['bin/gantry.js', 'streams', '--url', url, 'list'], { cwd: root });
      expect(listed.stdout).toMatch(/admin\.jobs\s+worker/);
      const tail = run(
        process.execPath,
        ['bin/gantry.js', 'streams', '--url', url, 'tail', 'admin.jobs', '--count', '1'],
        { cwd: root },
      );
      // The tail subscribes when its request arrives: publish until it has printed one message.
      let output: { stdout: string } | undefined;
      tail.then((result) => {
        output = result;
      });
      for (let n = 100; !output && n < 400; n++) {
        await app.publish(jobs, { n });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await tail;
      expect(JSON.parse(output?.stdout.trim().split('\n')[0] ?? '{}')).toMatchObject({
        type: 'admin.jobs',
        data: { n: expect.any(Number) },
      });
    } finally {
      await app.stop();
    }
  });
});
