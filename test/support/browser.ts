import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium, which CI installs (`.ci/run`). */
const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a machine with no network but loopback: without the background-networking ones
 * it keeps trying to reach Google's hosts and the closed network refuses them, many at a time.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A browser with a fresh profile of its own; `close()` ends it and removes the profile. */
export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium with a new empty profile named after the test. A persistent context is how Playwright
 * takes a user data folder of our choosing.
 */
export async function launchChromium(name: string, viewport = { width: 1280, height: 900 }): Promise<TestBrowser> {
  const profile = await mkdtemp(path.join(tmpdir(), `gantry-${name}-chromium-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
