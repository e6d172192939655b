import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startTestHost, type TestHost } from 'gantry/testing';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';
import { notifier } from '../../examples/notifier/service.ts';
import { replicator } from '../../examples/replicator/service.ts';
import { ChangeBroadcaster } from '../../examples/web/broadcaster.ts';
import { webApp } from '../../examples/web/plugin.ts';
import { webService } from '../../examples/web/service.ts';
import { launchChromium, type TestBrowser } from '../support/browser.ts';

const ARTIFACTS = path.resolve('test-artifacts');
/** How long a page may take to show what another did: the change goes through outbox, bus, consumer and SSE. */
const LIVE_MS = 10_000;

/** The rows of the customer list that contain `text`. */
const rowOf = (page: Page, text: string) => page.locator('#customers tbody tr', { hasText: text });

/** Waits until the element's text, trimmed, satisfies `predicate`; returns it. */
async function textOf(page: Page, selector: string, predicate: (text: string) => boolean, what: string) {
  const deadline = Date.now() + LIVE_MS;
  for (;;) {
    const text = ((await page.locator(selector).textContent()) ?? '').trim();
    if (predicate(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${selector} reads '${text}'`);
    await page.waitForTimeout(50);
  }
}

describe('the web app in headless Chromium, two pages side by side', () => {
  let app: TestHost;
  let baseUrl: string;
  let chromiumRun: TestBrowser | undefined;
  let browser: BrowserContext;
  let one: Page;
  let two: Page;
  /** Uncaught errors and policy violations in either page: there must be none. */
  const pageProblems: string[] = [];

  beforeAll(async () => {
    const broadcaster = new ChangeBroadcaster();
    app = await startTestHost({
      services: [customers, notifier, replicator, webService({ broadcaster, group: 'web-app-e2e' })],
      plugins: [webApp(broadcaster)],
      config: { host: { address: '127.0.0.1' } },
    });
    baseUrl = await app.host.listen();
    await mkdir(ARTIFACTS, { recursive: true });
    chromiumRun = await launchChromium('web-app', { width: 1280, height: 900 });
    browser = chromiumRun.context;
    const open = async (): Promise<Page> => {
      const page = await browser.newPage();
      page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        // Answers of 4xx are expected (the invalid input below); anything else logged as an error is not.
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
          pageProblems.push(`console: ${message.text()}`);
        }
      });
      await page.goto(`${baseUrl}/app/`);
      await page.locator('#live[data-state="live"]').waitFor({ timeout: LIVE_MS });
      return page;
    };
    one = await open();
    two = await open();
    // Set once: still there at the end means page two never reloaded.
    await two.evaluate('window.sameDocument = true');
  });

  afterAll(async () => {
    await chromiumRun?.close();
    await app?.stop();
  });

  it('shows on page two, live, what page one creates, edits and deletes', async () => {
    // Create.
    await one.locator('#name').fill('Ada Lovelace');
    await one.locator('#email').fill('ada.lovelace@example.com');
    await one.locator('#save').click();
    await textOf(one, '#status', (t) => t === 'Created Ada Lovelace.', 'the confirmation');
    await rowOf(two, 'ada.lovelace@example.com').waitFor({ timeout: LIVE_MS });
    await two.locator('#changes li[data-operation="created"]', { hasText: 'Ada Lovelace' }).waitFor();
    // The notifier sent the welcome mail, and the mailbox pane lists it.
    await two.locator('#mailbox tbody tr', { hasText: 'Welcome, Ada Lovelace' }).waitFor({ timeout: LIVE_MS });
    await two.screenshot({ path: path.join(ARTIFACTS, 'web-app-1-created-page-two.png'), fullPage: true });

    // Edit: page two updates the row in place and shows what changed; having the customer open in its own form, it
    // also warns that saving would overwrite the change.
    await rowOf(two, 'Ada Lovelace').locator('button.edit').click();
    await rowOf(one, 'Ada Lovelace').locator('button.edit').click();
    expect(await one.locator('#form-title').textContent()).toBe('Edit customer');
    expect(await one.locator('#email').inputValue()).toBe('ada.lovelace@example.com');
    await one.locator('#name').fill('Augusta Ada King');
    await one.locator('#save').click();
    await rowOf(two, 'Augusta Ada King').waitFor({ timeout: LIVE_MS });
    expect(await rowOf(two, 'Augusta Ada King').locator('td.version').textContent()).toBe('v2');
    expect(await rowOf(two, 'Ada Lovelace').count()).toBe(0);
    await textOf(two, '#form-notice', (t) => t.startsWith('Changed elsewhere meanwhile (now v2'), 'the notice');
    await two.locator('#cancel').click();
    expect(await two.locator('#form-notice').textContent()).toBe('');
    await two
      .locator('#changes li[data-operation="updated"]', { hasText: 'name Ada Lovelace → Augusta Ada King' })
      .waitFor();

    // Delete.
    one.once('dialog', (dialog) => void dialog.accept());
    await rowOf(one, 'Augusta Ada King').locator('button.delete').click();
    await rowOf(two, 'Augusta Ada King').waitFor({ state: 'detached', timeout: LIVE_MS });
    await two.locator('#changes li[data-operation="deleted"]', { hasText: 'Augusta Ada King' }).waitFor();
    await two.locator('#mailbox tbody tr', { hasText: 'Goodbye, Augusta Ada King' }).waitFor({ timeout: LIVE_MS });
    await one.screenshot({ path: path.join(ARTIFACTS, 'web-app-2-after-delete-page-one.png'), fullPage: true });
  });

  it('puts the API validation messages next to their fields', async () => {
    // The messages the API gives for this input, asked directly.
    const problem = await app.request('POST', '/customers', { name: '', email: 'not-an-email' });
    expect(problem.status).toBe(400);
    const errors = (problem.body as { errors: { path: string; message: string }[] }).errors;
    const messageOf = (field: string) => errors.find((e) => e.path === `/body/${field}`)?.message as string;
    expect(messageOf('name')).toBeTruthy();
    expect(messageOf('email')).toBeTruthy();

    await one.locator('#name').fill('');
    await one.locator('#email').fill('not-an-email');
    await one.locator('#save').click();
    expect(await textOf(one, '#name-error', (t) => t !== '', 'the name message')).toBe(messageOf('name'));
    expect(await textOf(one, '#email-error', (t) => t !== '', 'the email message')).toBe(messageOf('email'));
    expect(await one.locator('#name').getAttribute('aria-invalid')).toBe('true');
    await one.screenshot({ path: path.join(ARTIFACTS, 'web-app-3-invalid-input.png'), fullPage: true });

    // A taken email is a conflict, shown at the email too; a valid resubmission clears the messages.
    await app.request('POST', '/customers', { name: 'Grace', email: 'grace.hopper@example.com' });
    await one.locator('#name').fill('Another Grace');
    await one.locator('#email').fill('grace.hopper@example.com');
    await one.locator('#save').click();
    expect(await textOf(one, '#email-error', (t) => t.includes('already exists'), 'the conflict')).toBe(
      "a customer with email 'grace.hopper@example.com' already exists",
    );
    expect(await one.locator('#name-error').textContent()).toBe('');
    await one.locator('#email').fill('another.grace@example.com');
    await one.locator('#save').click();
    await textOf(one, '#status', (t) => t === 'Created Another Grace.', 'the confirmation');
    expect(await one.locator('#email-error').textContent()).toBe('');
  });

  it('pages and searches, and follows changes made through the API', async () => {
    for (let i = 1; i <= 11; i++) {
      const number = String(i).padStart(2, '0');
      const created = await app.request('POST', '/customers', {
        name: `Bulk ${number}`,
        email: `bulk${number}@example.com`,
      });
      expect(created.status).toBe(201);
    }
    // Grace and Another Grace from above, and the eleven: thirteen on two pages of ten.
    await textOf(two, '#page-info', (t) => t === 'Page 1 of 2 · 13 customers', 'page two to count thirteen');
    await textOf(one, '#page-info', (t) => t === 'Page 1 of 2 · 13 customers', 'page one to count thirteen');
    expect(await one.locator('#customers tbody tr').count()).toBe(10);
    expect(await one.locator('#customers tbody tr').first().textContent()).toContain('Bulk 11');
    await one.locator('#next').click();
    await textOf(one, '#page-info', (t) => t.startsWith('Page 2 of 2'), 'the second page');
    expect(await one.locator('#customers tbody tr').count()).toBe(3);
    expect(await one.locator('#next').isDisabled()).toBe(true);
    await one.locator('#prev').click();
    await textOf(one, '#page-info', (t) => t.startsWith('Page 1 of 2'), 'the first page again');

    await one.locator('#search-name').fill('grace');
    await textOf(one, '#page-info', (t) => t === 'Page 1 of 1 · 2 customers', 'the name search');
    await one.locator('#search-name').fill('');
    await one.locator('#search-email').fill('BULK0');
    await textOf(one, '#page-info', (t) => t === 'Page 1 of 1 · 9 customers', 'the email search');
    // A change elsewhere that matches the search shows in it.
    await app.request('POST', '/customers', { name: 'Bulk Late', email: 'bulk0late@example.com' });
    await rowOf(one, 'Bulk Late').waitFor({ timeout: LIVE_MS });
    await textOf(one, '#page-info', (t) => t === 'Page 1 of 1 · 10 customers', 'the search to grow');
    await one.locator('#search-email').fill('');
    await textOf(one, '#page-info', (t) => t === 'Page 1 of 2 · 14 customers', 'the full list');
  });

  it('shows the mailbox and the replica', async () => {
    await two.locator('#mailbox tbody tr', { hasText: 'Welcome, Bulk Late' }).waitFor({ timeout: LIVE_MS });
    expect(await two.locator('#replica dd[data-fact="store"]').textContent()).toBeTruthy();
    const rows = await textOf(two, '#replica dd[data-fact="rows"]', (t) => t === '14', 'the replica to hold 14 rows');
    expect(Number(rows)).toBe(14);
    expect(await two.locator('#replica dd[data-fact="deleted"]').textContent()).toBe('1');
    await two.screenshot({ path: path.join(ARTIFACTS, 'web-app-4-mailbox-and-replica-page-two.png'), fullPage: true });

    expect(await two.evaluate('window.sameDocument')).toBe(true);
    expect(pageProblems).toEqual([]);
  });
});
