// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core. It needs no broker, but it
// needs /usr/bin/chromium (CI installs it); screenshots go to test-artifacts/.
import { mkdirSync } from 'node:fs';
import { defineStream, service, t } from 'gantry';
import { database } from 'gantry/db';
import { defineTask } from 'gantry/jobs';
import { observability } from 'gantry/observe';
import { startTestHost, type TestHost } from 'gantry/testing';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../support/browser.ts';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const REGISTRY = `redis://127.0.0.1:6379?prefix=test-dashboard-${Date.now()}:`;

const parcelSent = defineStream('dashboard-parcels.sent', t.Object({ parcelId: t.String(), weight: t.Number() }));

const parcels = service({ name: 'parcels', version: '1.4.0' })
  .emits(parcelSent)
  .post(
    '/parcels',
    {
      body: t.Object({ parcelId: t.String({ minLength: 1 }), weight: t.Number({ minimum: 0 }) }),
      response: { 202: t.Object({ parcelId: t.String() }) },
    },
    async ({ body }, ctx) => {
      await ctx.emit(parcelSent, body);
      return { parcelId: body.parcelId };
    },
  )
  .get(
    '/parcels/:id',
    { params: t.Object({ id: t.String() }), response: t.Object({ id: t.String() }) },
    async ({ params }) => ({
      id: params.id,
    }),
  );

const labelPrinted = defineStream('dashboard-labels.printed', t.Object({ labelId: t.String() }));

const parcelSorted = defineTask('dashboard-parcels.sort', { input: t.Object({ parcelId: t.String() }) });
const migrations = new URL('../fixtures/jobs-migrations', import.meta.url);

const tracked: string[] = [];
// Labels fail while the printer is jammed: with one attempt each, a failure is dead-lettered at once.
const printer = { jammed: false };
const printed: string[] = [];
const tracking = service({ name: 'tracking', version: '2.0.0', drivers: { db: database({ schema: {}, migrations }) } })
  .jobs({ pollMs: 25 })
  .task(parcelSorted, async () => undefined)
  .on(parcelSent, {}, async (parcel) => {
    tracked.push(parcel.parcelId);
  })
  .on(labelPrinted, { group: 'labels', maxAttempts: 1 }, async (label) => {
    if (printer.jammed) throw new Error(`label printer jammed on ${label.labelId}`);
    printed.push(label.labelId);
  });

describe('the dashboard in Chromium', () => {
  let app: TestHost;
  let address = '';
  let context: BrowserContext;
  let page: Page;
  let chromiumRun: TestBrowser | undefined;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    app = await startTestHost({
      services: [parcels, tracking],
      // With a discovery registry, the overview also lists the live instances it knows (this process's own here).
      config: { host: { address: '127.0.0.1', calls: { registry: REGISTRY } } },
      plugins: observability({ errors: false, dashboard: { enabled: true } }),
    });
    address = await app.host.listen();
    chromiumRun = await launchChromium('dashboard', { width: 1280, height: 860 });
    context = chromiumRun.context;
    page = context.pages()[0] ?? (await context.newPage());
    // The page must load everything from the host itself: any other address is a failure.
    await context.route(
      (url) => !url.href.startsWith(address),
      (route) => route.abort(),
    );
  });

  afterAll(async () => {
    await chromiumRun?.close();
    await app?.stop();
  });

  it('loads fast from local assets and shows the running services and how the stream connects them', async () => {
    const failedRequests: string[] = [];
    page.on('requestfailed', (request) => failedRequests.push(request.url()));
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const began = Date.now();
    await page.goto(`${address}/_gantry`, { waitUntil: 'load' });
    expect(Date.now() - began).toBeLessThan(5_000);
    await page.locator('.service[data-service="parcels"]').waitFor();
    await expect.poll(() => page.locator('.service h3').allTextContents()).toEqual(['parcels 1.4.0', 'tracking 2.0.0']);
    expect(await page.locator('.service[data-service="parcels"]').textContent()).toContain('POST /parcels');
    expect(await page.locator('.flow').allTextContents()).toEqual([
      '(outside) → dashboard-labels.printed → tracking (labels)',
      'parcels → dashboard-parcels.sent → tracking (tracking)',
    ]);
    expect(await page.locator('#env').textContent()).toBe('test');
    await expect
      .poll(async () => {
        await page.getByRole('button', { name: 'Overview' }).click();
        return page.locator('#instance-rows tr td:first-child').allTextContents();
      })
      .toEqual(expect.arrayContaining(['parcels', 'tracking']));
    await page.screenshot({ path: `${ARTIFACTS}dashboard-overview.png`, fullPage: true });
    expect(failedRequests).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('updates the live log after a request, and opens its trace as a waterfall', async () => {
    await page.getByRole('button', { name: 'Live log' }).click();
    await expect.poll(() => page.locator('#log-state').textContent()).toBe('live');
    const res = await fetch(`${address}/parcels`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'browser-req-1' },
      body: JSON.stringify({ parcelId: 'p-1', weight: 2.5 }),
    });
    expect(res.status).toBe(202);
    const row = page.locator('#log-rows tr[data-request-id="browser-req-1"]', { hasText: 'POST /parcels' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td').nth(3).textContent()).toBe('succeeded');
    expect(await row.locator('td').nth(4).textContent()).toBe('202');
    // The consumer's run carries the same request id, through the message.
    await page
      .locator('#log-rows tr[data-request-id="browser-req-1"]', { hasText: 'on dashboard-parcels.sent' })
      .waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-live-log.png`, fullPage: true });

    await row.locator('a').click();
    // The POST event's run is the server span of its request: three spans for request, publish and consume.
    await expect.poll(() => page.locator('#waterfall .span-row').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.locator('#waterfall .span-name').allTextContents()).toEqual([
      'POST /parcels',
      'publish dashboard-parcels.sent',
      'tracking on dashboard-parcels.sent (tracking)',
    ]);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-trace.png`, fullPage: true });
  });

  it('sends a request from the try-it form, built from the OpenAPI document', async () => {
    await page.getByRole('button', { name: 'Try it' }).click();
    await page.locator('#try-op option', { hasText: 'POST /parcels' }).waitFor({ state: 'attached' });
    await page.selectOption('#try-op', { label: 'POST /parcels' });
    expect(JSON.parse(await page.locator('#try-body').inputValue())).toEqual({ parcelId: 'x', weight: 0 });
    await page.fill('#try-body', JSON.stringify({ parcelId: 'from-the-form', weight: 1 }));
    await page.click('#try-send');
    await expect.poll(() => page.locator('#try-status').textContent()).toBe('202 Accepted');
    expect(JSON.parse((await page.locator('#try-response').textContent()) ?? '')).toEqual({
      parcelId: 'from-the-form',
    });
    await app.waitFor(() => tracked.includes('from-the-form'), 'the consumer to get the parcel sent from the form');

    await page.selectOption('#try-op', { label: 'GET /parcels/{id}' });
    expect(await page.locator('#try-body').isVisible()).toBe(false);
    await page.fill('#try-params input[name="id"]', 'abc');
    await page.click('#try-send');
    await expect.poll(() => page.locator('#try-meta').textContent()).toContain('GET /parcels/abc');
    expect(await page.locator('#try-status').textContent()).toBe('200 OK');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-try-it.png`, fullPage: true });
  });

  it('shows a dead letter with lag figures in the Streams panel and replays it until it is consumed', async () => {
    const labelId = `l-${Date.now()}`;
    printer.jammed = true;
    await app.publish(labelPrinted, { labelId });
    await page.getByRole('button', { name: 'Streams' }).click();
    const card = page.locator('.dlq[data-stream="dashboard-labels.printed"]');
    const deadLetters = async (): Promise<string | null> => {
      await page.click('#streams-refresh');
      return card.locator('.dlq-count').textContent({ timeout: 10_000 });
    };
    await expect.poll(deadLetters, { timeout: 30_000, interval: 500 }).toBe('1');
    // The group took the message (lag 0) and gave up on it; the dead letter says why.
    expect(await card.locator('li[data-group="labels"] .lag').textContent()).toBe('0');
    expect(await card.locator('li[data-group="labels"]').textContent()).toContain('dead-lettered 1');
    await card.locator('.dlq-letters td.reason').first().waitFor({ timeout: 10_000 });
    expect(await card.locator('.dlq-letters td.reason').first().textContent()).toContain(
      `label printer jammed on ${labelId}`,
    );
    expect(printed).not.toContain(labelId);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-dead-letters.png`, fullPage: true });

    printer.jammed = false;
    await card.getByRole('button', { name: 'Replay' }).click();
    await app.waitFor(() => printed.includes(labelId), 'the replayed label to be consumed', 30_000);
    await expect.poll(() => card.locator('.dlq-result').textContent(), { timeout: 20_000 }).toBe('replayed 1');
    await expect.poll(deadLetters, { timeout: 30_000, interval: 500 }).toBe('0');
    expect(await card.getByRole('button', { name: 'Replay' }).isDisabled()).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-replayed.png`, fullPage: true });
  });

  it('shows the jobs of each task by state in the Calls & jobs panel', async () => {
    const jobs = app.host.runtime('tracking').jobs;
    if (jobs === undefined) throw new Error('the tracking service has no jobs');
    const { id } = await jobs.enqueue(parcelSorted, { parcelId: 'p-sorted' });
    await app.waitFor(async () => (await jobs.get(id))?.state === 'succeeded', 'the sorting job to succeed');
    await page.getByRole('button', { name: 'Calls & jobs' }).click();
    const row = page.locator('#job-rows tr', { hasText: 'dashboard-parcels.sort' });
    await expect
      .poll(
        async () => {
          await page.click('#work-refresh');
          return row.locator('td').allTextContents();
        },
        { timeout: 10_000, interval: 300 },
      )
      .toEqual(['tracking', 'dashboard-parcels.sort', '0', '0', '0', '1', '0', '0']);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-calls-and-jobs.png`, fullPage: true });
  });

  it('lists the instances of other hosts that the registry knows, and what each runs', async () => {
    const depot = service({ name: 'depot', version: '0.9.0' }).get(
      '/depot/health',
      { response: t.Object({ ok: t.Boolean() }) },
      async () => ({ ok: true }),
    );
    const other = await startTestHost({
      services: [depot],
      config: { host: { address: '127.0.0.1', calls: { registry: REGISTRY } } },
    });
    try {
      await other.host.listen();
      await page.getByRole('button', { name: 'Overview' }).click();
      const row = page.locator('#instance-rows tr[data-service="depot"]');
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Overview' }).click();
            return (await row.count()) > 0 ? row.locator('td').allTextContents() : [];
          },
          { timeout: 15_000, interval: 500 },
        )
        .toEqual(['depot', '0.9.0', expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), 'GET /depot/health']);
      await page.screenshot({ path: `${ARTIFACTS}dashboard-instances.png`, fullPage: true });
    } finally {
      await other.stop();
    }
  });
});
