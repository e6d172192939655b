import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startTestHost, type TestHost } from 'gantry/testing';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';
import { ChangeBroadcaster } from '../../examples/web/broadcaster.ts';
import { webApp } from '../../examples/web/plugin.ts';
import { webLogin, webService } from '../../examples/web/service.ts';
import { launchChromium, type TestBrowser } from '../support/browser.ts';
import { freePort, startOidcProvider, TEST_ACCOUNT, type TestOidcProvider } from '../support/oidc-provider.ts';

const ARTIFACTS = path.resolve('test-artifacts');
/** Generous: the machine is shared, and a login is several redirects and page loads. */
const WAIT_MS = 60_000;

/** What a `fetch` from inside the page got: its status and problem code. */
interface FetchResult {
  status: number;
  code?: string;
}

/** Sends a request from the page itself (same origin, with its cookies), optionally without the CSRF header. */
function fetchFromPage(page: Page, method: string, url: string, body?: unknown): Promise<FetchResult> {
  return page.evaluate(
    async ({ method, url, body }) => {
      const response = await fetch(url, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { code?: string }).code;
      } catch {
        // Not JSON.
      }
      return code === undefined ? { status: response.status } : { status: response.status, code };
    },
    { method, url, body },
  );
}

describe('logging in to the web app through a real OpenID provider, in headless Chromium', () => {
  let provider: TestOidcProvider;
  let app: TestHost;
  let baseUrl: string;
  let chromiumRun: TestBrowser | undefined;
  let browser: BrowserContext;
  let page: Page;
  const suffix = Math.random().toString(36).slice(2, 8);

  beforeAll(async () => {
    // The host must know its callback URL before it starts, and the provider the client's redirect URI.
    const port = await freePort();
    const redirectUrl = `http://127.0.0.1:${port}/auth/callback`;
    provider = await startOidcProvider({ redirectUri: redirectUrl });
    const broadcaster = new ChangeBroadcaster();
    const login = webLogin();
    app = await startTestHost({
      services: [customers, webService({ broadcaster, login, group: `web-login-e2e-${suffix}` })],
      plugins: [login.plugin(), webApp(broadcaster, { login })],
      config: { host: { address: '127.0.0.1', port } },
      settings: {
        web: {
          login: {
            issuer: provider.issuer,
            clientId: provider.clientId,
            clientSecret: provider.clientSecret,
            redirectUrl,
            sessionSecret: `session-secret-${suffix}-0123456789abcdefghij`,
          },
        },
      },
    });
    baseUrl = await app.host.listen();
    await mkdir(ARTIFACTS, { recursive: true });
    chromiumRun = await launchChromium('web-login', { width: 1280, height: 900 });
    browser = chromiumRun.context;
    page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
  });

  afterAll(async () => {
    await chromiumRun?.close();
    await app?.stop();
    await provider?.close();
  });

  it('refuses the app without a session, logs in at the provider, works with CSRF, and logs out', async () => {
    // Without a session, the app is not served: the browser ends up on the provider's login form.
    const first = await page.goto(`${baseUrl}/app/`);
    expect(page.url().startsWith(`${provider.issuer}/`)).toBe(true);
    expect(first?.url().startsWith(baseUrl)).toBe(false);
    await page.locator('input[name="login"]').waitFor();
    // The API refuses an anonymous call with 401 problem+json, not a redirect.
    const anonymous = await fetch(`${baseUrl}/customers`, { headers: { accept: 'application/json' } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-login-1-provider-form.png'), fullPage: true });

    // Log in through the provider's form: back on /app/, with the customers list and the user's name.
    await page.locator('input[name="login"]').fill(TEST_ACCOUNT);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(`${baseUrl}/app/`, { timeout: WAIT_MS });
    await page.locator('#user', { hasText: TEST_ACCOUNT }).waitFor();
    await page.locator('#page-info', { hasText: 'Page 1 of' }).waitFor();
    await page.locator('#live[data-state="live"]').waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-login-2-logged-in.png'), fullPage: true });

    // Creating a customer works: the app sends the CSRF token.
    const email = `grace.${suffix}@example.com`;
    await page.locator('#name').fill('Grace Hopper');
    await page.locator('#email').fill(email);
    await page.locator('#save').click();
    await page.locator('#status', { hasText: 'Created Grace Hopper.' }).waitFor();
    await page.locator('#customers tbody tr', { hasText: email }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-login-3-created.png'), fullPage: true });

    // The same POST without the token is refused, though the session cookie goes with it.
    const forged = await fetchFromPage(page, 'POST', '/customers', {
      name: 'Mallory',
      email: `m.${suffix}@example.com`,
    });
    expect(forged).toEqual({ status: 403, code: 'GANTRY_ERR_AUTH_CSRF' });
    const total = await page.evaluate(async (q) => {
      const response = await fetch(`/customers?email=${q}`);
      return ((await response.json()) as { total: number }).total;
    }, `m.${suffix}`);
    expect(total).toBe(0);

    // Logout ends the session: the API answers 401 again. A list reload still in flight when the user logs out
    // (held here until the logout is done) gets that 401 too, and must leave the browser on the signed-out page
    // instead of sending it back to the provider.
    let releaseReload = (): void => {};
    const reloadHeld = new Promise<void>((resolve) => {
      releaseReload = resolve;
    });
    let reloadSeen = (): void => {};
    const reloadStarted = new Promise<void>((resolve) => {
      reloadSeen = resolve;
    });
    await page.route('**/customers?*', async (route) => {
      reloadSeen();
      await reloadHeld;
      await route.continue();
    });
    await page.locator('#search-name').fill('Grace');
    await reloadStarted;
    await page.locator('#logout').click();
    await page.getByText('You are signed out.').waitFor();
    const reloadAnswered = page.waitForResponse((response) => response.url().includes('/customers?'));
    releaseReload();
    expect((await reloadAnswered).status()).toBe(401);
    await page.unroute('**/customers?*');
    // The page had a turn to act on the 401: it is still the signed-out page of the app.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
    expect(page.url()).toBe(`${baseUrl}/app/`);
    expect(await fetchFromPage(page, 'GET', '/customers')).toEqual({
      status: 401,
      code: 'GANTRY_ERR_AUTH_UNAUTHENTICATED',
    });
    const cookies = await browser.cookies(baseUrl);
    expect(cookies.find((cookie) => cookie.name === 'gantry_session')).toBeUndefined();
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-login-4-logged-out.png'), fullPage: true });

    // The subject, and only the subject, reached the logs of the create.
    const created = app.logs.lines.find((line) => line.msg === 'customer created');
    expect(created).toMatchObject({ subject: TEST_ACCOUNT });
  });
});
