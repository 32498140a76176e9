/** Debian's Chromium, headless, driven by playwright-core (never a downloaded browser). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgestream-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1100, height: 760 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A new tab whose first page of each origin starts with empty localStorage:
 * the widget keeps its chat per site in localStorage, which every tab of the
 * context shares, so each test starts its own conversation. A reload keeps it
 * (the tab's sessionStorage remembers the clearing); open a second tab of the
 * same conversation with `context.newPage()`.
 */
export async function freshPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.addInitScript(() => {
    try {
      if (sessionStorage.getItem('test:fresh')) return;
      localStorage.clear();
      sessionStorage.setItem('test:fresh', '1');
    } catch {
      // a frame without storage
    }
  });
  return page;
}
