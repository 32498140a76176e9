// The AI SDK's own useChat (@ai-sdk/react, unmodified, bundled with esbuild)
// in Debian's Chromium, on a page of another origin, against `wrangler dev`:
// stream, reload mid-answer and resume, continue, regenerate, stop, fail.
import { build } from 'esbuild';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoText } from '../e2e/demo-reference';
import { launchBrowser } from '../support/browser';
import { ROOT, freePort, startDevServer, type DevServer } from '../support/dev-server';

/** Slow enough to reload or stop mid-answer (~8 s in all); no test asserts a duration. */
const SLOW = { tokens: 400, delayMs: 20 };
const QUICK = { tokens: 20, delayMs: 5 };

let server: DevServer;
let site: { url: string; close: () => Promise<void> };
let browser: Awaited<ReturnType<typeof launchBrowser>>;

/** The app's own origin: serves the page and its bundle; the API is on wrangler's. */
async function startSite(endpoint: string, port: number) {
  const bundle = await build({
    entryPoints: [join(ROOT, 'test/browser/use-chat-app.tsx')],
    bundle: true,
    write: false,
    format: 'iife',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  const js = bundle.outputFiles[0]!.text;
  const html = `<!doctype html><meta charset="utf-8"><title>useChat</title><div id="root"></div>
<script>window.ENDPOINT = ${JSON.stringify(endpoint)};</script><script src="/app.js"></script>`;
  const http: Server = createServer((req, res) => {
    if (req.url === '/app.js') return res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(js);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => http.close(() => r())) };
}

beforeAll(async () => {
  const [apiPort, sitePort] = [await freePort(), await freePort()];
  site = await startSite(`http://127.0.0.1:${apiPort}`, sitePort);
  server = await startDevServer({ port: apiPort, vars: { ALLOWED_ORIGINS: site.url, HEARTBEAT_MS: '1000', RETRY_MS: '200' } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
});

let n = 0;
/** A chat id as useChat makes them (16+ alphanumerics). */
const newChatId = () => `uc${Date.now().toString(36)}${(n++).toString(36)}${Math.random().toString(36).slice(2, 10)}`.padEnd(16, 'x');

/**
 * A tab on the chat, once useChat's resume on mount has been answered: acting
 * before that races it (its 204 sets the status to ready mid-request).
 */
async function openChat(chatId: string): Promise<Page> {
  const page = await browser.context.newPage();
  const resumed = page.waitForResponse((r) => r.url().endsWith(`/v1/chat/${chatId}/stream`));
  await page.goto(`${site.url}/?chat=${chatId}`);
  await resumed;
  await page.waitForSelector('#status');
  return page;
}

/** What the page shows: each message's role, id and text. */
const shown = (page: Page) =>
  page.$$eval('#messages li', (items) =>
    items.map((li) => ({ role: li.getAttribute('data-role')!, id: li.getAttribute('data-id')!, text: li.textContent ?? '' })),
  );
const status = (page: Page) => page.textContent('#status');

async function waitForStatus(page: Page, wanted: string, timeout = 90_000) {
  await page.waitForFunction((s) => document.querySelector('#status')?.textContent === s, wanted, { timeout });
}

/** Wait until message number `count` is an answer of at least `chars` characters (mid-answer). */
async function waitForAnswer(page: Page, count: number, chars: number) {
  await page.waitForFunction(
    ([n, min]) => {
      const items = document.querySelectorAll('#messages li');
      const last = items[n - 1];
      return items.length === n && last?.getAttribute('data-role') === 'assistant' && (last.textContent?.length ?? 0) >= min;
    },
    [count, chars] as const,
    { timeout: 60_000 },
  );
}

async function serverView(chatId: string) {
  const res = await fetch(`${server.url}/v1/chat/${chatId}/messages`);
  expect(res.status).toBe(200);
  return (await res.json()) as {
    messages: { id: string; role: string; parts: { text: string }[]; metadata?: { state: string; requestId: string } }[];
    activeTurn: unknown;
  };
}

async function serverSettled(chatId: string) {
  await expect.poll(async () => (await serverView(chatId)).activeTurn, { timeout: 30_000 }).toBeNull();
  return serverView(chatId);
}

describe('useChat, unmodified, against edgestream', () => {
  const chatId = newChatId();
  const first = 'What is edgestream?';
  const second = 'And how does it resume?';

  it('sends a message and watches the answer stream in', async () => {
    const page = await openChat(chatId);
    expect(await status(page)).toBe('ready');
    await page.evaluate(([text, options]) => window.chatTest.send(text, options), [first, QUICK] as const);
    await waitForStatus(page, 'ready');
    const messages = await shown(page);
    expect(messages.map((m) => [m.role, m.text])).toEqual([
      ['user', first],
      ['assistant', demoText(first, QUICK)],
    ]);
    // The chat token came in the transient data part, as the app's onData saw it.
    const parts = (await page.evaluate(() => window.chatTest.dataParts)) as { type: string }[];
    expect(parts.filter((p) => p.type === 'data-chat')).toEqual([
      { type: 'data-chat', transient: true, data: expect.objectContaining({ chatId, token: expect.any(String) }) },
    ]);
    // The run's status and plan arrived as data parts too.
    expect(parts.map((p) => p.type)).toEqual(expect.arrayContaining(['data-status', 'data-plan']));
    await page.close();
  });

  it('resumes the same answer after a reload mid-answer, with no text twice', async () => {
    const page = await openChat(chatId);
    expect((await shown(page)).length).toBe(2); // the conversation came from the server
    await page.evaluate(([text, options]) => window.chatTest.send(text, options), [second, SLOW] as const);
    await waitForAnswer(page, 4, 200);
    const before = (await shown(page)).at(-1)!;
    await page.reload();
    await page.waitForSelector('#status');
    // resume: true asked GET /v1/chat/{id}/stream; the replay from the start replaces, not appends.
    await waitForAnswer(page, 4, before.text.length);
    await waitForStatus(page, 'ready');
    const after = await shown(page);
    expect(after.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(after[3]!.text).toBe(demoText(second, SLOW));
    expect(after[3]!.id).toBe(before.id);
    const view = await serverSettled(chatId);
    expect(view.messages.map((m) => m.parts[0]!.text)).toEqual(after.map((m) => m.text));
    await page.close();
  });

  it('shows one conversation in a second tab, loaded from the server', async () => {
    const [a, b] = [await openChat(chatId), await openChat(chatId)];
    expect(await shown(a)).toEqual(await shown(b));
    expect((await shown(b)).length).toBe(4);
    await a.close();
    await b.close();
  });

  it('regenerates the last answer in place', async () => {
    const page = await openChat(chatId);
    const before = await shown(page);
    const again = { tokens: 25, delayMs: 5 };
    await page.evaluate((options) => window.chatTest.regenerate(options), again);
    // Done when a new answer stands last and the chat is ready again.
    await page.waitForFunction(
      (oldId) => {
        const items = document.querySelectorAll('#messages li');
        const last = items[items.length - 1];
        return (
          last?.getAttribute('data-role') === 'assistant' &&
          last.getAttribute('data-id') !== oldId &&
          document.querySelector('#status')?.textContent === 'ready'
        );
      },
      before[3]!.id,
      { timeout: 60_000 },
    );
    const after = await shown(page);
    expect(after.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(after.slice(0, 3)).toEqual(before.slice(0, 3));
    expect(after[3]!.text).toBe(demoText(second, again));
    const view = await serverSettled(chatId);
    expect(view.messages.map((m) => m.parts[0]!.text)).toEqual(after.map((m) => m.text));
    await page.close();
  });

  it('stops an answer: the turn ends cancelled on the server', async () => {
    const page = await openChat(chatId);
    await page.evaluate((options) => window.chatTest.send('Tell me everything', options), SLOW);
    await waitForAnswer(page, 6, 100);
    const stopStatus = await page.evaluate(() => window.chatTest.stop());
    expect(stopStatus).toBe(202);
    await waitForStatus(page, 'ready');
    const view = await serverSettled(chatId);
    const answer = view.messages.at(-1)!;
    expect(answer.metadata?.state).toBe('cancelled');
    // Cut short: part of the answer, not all of it.
    const full = demoText('Tell me everything', SLOW);
    expect(answer.parts[0]!.text.length).toBeLessThan(full.length);
    expect(full.startsWith(answer.parts[0]!.text)).toBe(true);
    // The page shows nothing the server does not have.
    const text = (await shown(page)).at(-1)!.text;
    expect(answer.parts[0]!.text.startsWith(text)).toBe(true);
    await page.close();
  });

  it("shows a failing run's error", async () => {
    const page = await openChat(chatId);
    await page.evaluate(() => window.chatTest.send('Fail, please', { tokens: 30, delayMs: 5, failAfter: 5 }));
    await waitForStatus(page, 'error');
    expect(await page.textContent('#error')).toBe('demo agent failed after 5 deltas, as asked by failAfter');
    expect((await shown(page)).at(-1)!.text).toBe(demoText('Fail, please', { tokens: 30, delayMs: 5, failAfter: 5 }));
    const view = await serverSettled(chatId);
    expect(view.messages.at(-1)!.metadata).toMatchObject({ state: 'failed' });
    await page.close();
  });
});

declare global {
  interface Window {
    chatTest: {
      send(text: string, options: Record<string, unknown>): void;
      regenerate(options: Record<string, unknown>): void;
      stop(): Promise<number>;
      dataParts: unknown[];
    };
  }
}
