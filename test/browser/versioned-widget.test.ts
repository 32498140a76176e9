// Another site embeds the released widget by its immutable URL with
// Subresource Integrity, as the README shows: Debian's Chromium loads it
// with the hash from /sri.json, and refuses it with any other hash.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../support/browser';
import { ROOT, startDevServer, type DevServer } from '../support/dev-server';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
let server: DevServer;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let integrity: Record<string, string>;
/** The embedding site, on another origin: `GET /?hash=...` is a page embedding the widget with that hash. */
let site: Server;
let siteUrl = '';

function page(hash: string): string {
  const src = `${server.url}/widget@${version}.js`;
  return `<!doctype html><title>site</title><body>
<script src="${src}" integrity="${hash}" crossorigin="anonymous" data-endpoint="${server.url}"
  onload="window.loaded = true" onerror="window.refused = true"></script></body>`;
}

beforeAll(async () => {
  site = createServer((req, res) => {
    const hash = new URL(req.url ?? '/', 'http://site').searchParams.get('hash') ?? '';
    res.writeHead(200, { 'Content-Type': 'text/html' }).end(page(hash));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const address = site.address();
  siteUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  server = await startDevServer({ vars: { ALLOWED_ORIGINS: siteUrl } });
  browser = await launchBrowser();
  integrity = ((await (await fetch(`${server.url}/sri.json`)).json()) as { integrity: Record<string, string> }).integrity;
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => site?.close(resolve));
});

async function embed(hash: string): Promise<{ tab: Page; console: string[] }> {
  const tab = await browser.context.newPage();
  const console: string[] = [];
  tab.on('console', (message) => console.push(message.text()));
  await tab.goto(`${siteUrl}/?hash=${encodeURIComponent(hash)}`);
  return { tab, console };
}

describe('the versioned widget with integrity', () => {
  it('loads and mounts with the hash /sri.json lists', async () => {
    const { tab } = await embed(integrity[`/widget@${version}.js`]!);
    await tab.waitForFunction(() => (window as { loaded?: boolean }).loaded === true);
    await tab.waitForSelector('edgestream-widget', { state: 'attached' });
    await tab.close();
  });

  it('is refused by the browser with another hash, and mounts nothing', async () => {
    const { tab, console } = await embed(integrity[`/client@${version}.js`]!);
    await tab.waitForFunction(() => (window as { refused?: boolean }).refused === true);
    expect(await tab.locator('edgestream-widget').count()).toBe(0);
    expect(console.join('\n')).toMatch(/integrity/i);
    await tab.close();
  });
});
