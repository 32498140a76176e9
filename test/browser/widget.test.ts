// The widget in Debian's Chromium, embedded on a page of another origin.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoText } from '../e2e/demo-reference';
import { launchBrowser } from '../support/browser';
import { ROOT, freePort, startDevServer, type DevServer } from '../support/dev-server';
import { waitForState } from '../support/sse';
import { startHostSite, type HostSite } from './host-site';

const SHOTS = join(ROOT, 'test-results', 'screenshots');
const OPTIONS = { tokens: 250, delayMs: 25 };
let server: DevServer;
let site: HostSite;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let port: number;

async function startRuntime(persistDir?: string) {
  server = await startDevServer({
    port,
    persistDir,
    vars: { ALLOWED_ORIGINS: siteOrigin, HEARTBEAT_MS: '1000', RETRY_MS: '200' },
  });
}
let siteOrigin = '';

beforeAll(async () => {
  port = await freePort();
  // The host site must exist first: its origin goes into ALLOWED_ORIGINS.
  site = await startHostSite(`http://127.0.0.1:${port}`, { 'data-options': JSON.stringify(OPTIONS) });
  siteOrigin = site.url;
  await startRuntime();
  browser = await launchBrowser();
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
});

const w = (page: Page, selector: string) => page.locator(`edgestream-widget ${selector}`);

async function ask(page: Page, question: string) {
  await w(page, 'textarea').fill(question);
  await w(page, 'textarea').press('Enter');
}

async function finalAnswer(page: Page, timeout = 90_000) {
  await page.waitForFunction(
    () => {
      const root = document.querySelector('edgestream-widget')?.shadowRoot;
      return root?.querySelector('.answer')?.getAttribute('data-streaming') === 'false' && root.querySelector('.answer')!.textContent!.length > 0;
    },
    undefined,
    { timeout },
  );
  return (await w(page, '.answer').textContent()) ?? '';
}

async function waitForText(page: Page, minLength: number) {
  await page.waitForFunction((n) => (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.answer')?.textContent?.length ?? 0) >= n, minLength, {
    timeout: 30_000,
  });
}

describe('widget embedded on another origin', () => {
  it('asks a question and streams the answer (CORS)', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    await ask(page, 'What is edgestream?');
    await expect.poll(() => w(page, '.plan li').count()).toBe(3);
    const text = await finalAnswer(page);
    expect(text).toBe(demoText('What is edgestream?', OPTIONS));
    expect(await w(page, '.conn').textContent()).toBe('Completed');
    expect(await w(page, '.steps li').count()).toBeGreaterThanOrEqual(5);
    // the host page's CSS (red launcher, lime buttons) did not leak in
    const color = await w(page, '.launcher').evaluate((el) => getComputedStyle(el).color);
    expect(color).not.toBe('rgb(255, 0, 0)');
    await page.close();
  });

  it('survives a runtime kill and restart mid-answer with no duplicated or missing text', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    await ask(page, 'restart in the middle');
    await waitForText(page, 200);
    const persistDir = server.persistDir;
    await server.stop('SIGKILL');
    await startRuntime(persistDir);
    const text = await finalAnswer(page, 120_000);
    expect(text).toBe(demoText('restart in the middle', OPTIONS));
    await page.close();
  });

  it('resumes the same answer after a page reload mid-answer', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    await ask(page, 'reload me');
    await waitForText(page, 150);
    await page.reload();
    expect(await w(page, '.question').textContent()).toBe('reload me');
    const text = await finalAnswer(page);
    expect(text).toBe(demoText('reload me', OPTIONS));
    await page.close();
  });

  it('the stop button cancels the run', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    const requestId = page.waitForResponse((r) => r.url().endsWith('/v1/runs') && r.request().method() === 'POST');
    await ask(page, 'stop me');
    const res = await requestId;
    await waitForText(page, 40);
    await w(page, 'button:has-text("Stop")').click();
    await expect.poll(() => w(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run cancelled.');
    const headers = await res.allHeaders();
    const status = await waitForState(server.url, headers['x-request-id']!, headers['x-run-token']!);
    expect(status.state).toBe('cancelled');
    await page.close();
  });

  it("shows a failed run's error with a Retry button that asks again", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/fail`);
    const posts: string[] = [];
    page.on('request', (r) => r.method() === 'POST' && r.url().endsWith('/v1/runs') && posts.push(r.url()));
    await ask(page, 'fail please');
    await expect.poll(() => w(page, '.error span').textContent(), { timeout: 20_000 }).toMatch(/failed after 3 deltas/);
    expect(await w(page, '.final').textContent()).toBe('Run failed.');
    expect(await w(page, '.conn').textContent()).toBe('Failed');
    await w(page, '.error button').click();
    await expect.poll(() => posts.length, { timeout: 20_000 }).toBe(2);
    await expect.poll(() => w(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run failed.');
    expect(await w(page, '.question').textContent()).toBe('fail please');
    await page.close();
  });

  it('works with the keyboard alone', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    await w(page, 'textarea').waitFor();
    await page.keyboard.press('Escape');
    expect(await w(page, '.panel').isHidden()).toBe(true);
    expect(await page.evaluate(() => document.querySelector('edgestream-widget')!.shadowRoot!.activeElement?.className)).toBe('launcher');
    await page.keyboard.press('Enter');
    expect(await w(page, '.panel').isVisible()).toBe(true);
    expect(await page.evaluate(() => document.querySelector('edgestream-widget')!.shadowRoot!.activeElement?.id)).toBe('es-input');
    expect(await w(page, '.answer').getAttribute('aria-live')).toBe('polite');
    await page.close();
  });

  it('renders model text as text, never as HTML', async () => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    const hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    await ask(page, hostile);
    await finalAnswer(page);
    expect(await w(page, '.question').textContent()).toBe(hostile);
    expect(await w(page, '.plan li').first().textContent()).toContain('<img src=x');
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await w(page, '.plan img').count()).toBe(0);
    await page.close();
  });

  it.each(['light', 'dark'])('looks right in the %s theme (screenshot)', async (theme) => {
    const page = await browser.context.newPage();
    await page.goto(site.url);
    await page.evaluate((t) => document.querySelector('edgestream-widget')!.setAttribute('data-theme', t), theme);
    await ask(page, 'Show me the plan and the answer');
    await finalAnswer(page);
    await w(page, '.body').evaluate((el) => (el.scrollTop = 0)); // show the question, plan and steps
    const file = join(SHOTS, `widget-${theme}.png`);
    await page.screenshot({ path: file });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    await page.close();
  });
});

describe('React hook', () => {
  it('streams into a React page, resumes after unmount/remount, and reports the final state', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/react`);
    await page.click('#start');
    await page.waitForFunction(() => (document.querySelector('#text')?.textContent?.length ?? 0) > 50);
    expect(await page.locator('#plan li').count()).toBe(3);
    await page.click('#toggle'); // unmount: disconnects, does not cancel
    await page.click('#toggle'); // mount: resumes the same run from sessionStorage
    await expect.poll(() => page.locator('#run-state').textContent(), { timeout: 60_000 }).toBe('completed');
    expect(await page.locator('#text').textContent()).toBe(demoText('react hook question', { tokens: 150, delayMs: 20 }));
    await page.close();
  });
});
