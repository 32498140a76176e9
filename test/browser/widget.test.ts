// The widget in Debian's Chromium, embedded on a page of another origin.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoText } from '../e2e/demo-reference';
import { shownDemoText } from './shown-text';
import { freshPage, launchBrowser } from '../support/browser';
import { ROOT, freePort, startDevServer, type DevServer } from '../support/dev-server';
import { waitForState } from '../support/sse';
import { startHostSite, type HostSite } from './host-site';

const SHOTS = join(ROOT, 'test-results', 'screenshots');
const OPTIONS = { tokens: 250, delayMs: 25 };
/** Short answers, for tests that need several turns. */
const QUICK = { tokens: 30, delayMs: 5 };
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
/** A part of the newest turn. */
const last = (page: Page, selector: string) => w(page, `.turn:last-child ${selector}`);
const quickUrl = (extra = '') => `${site.url}/?options=${encodeURIComponent(JSON.stringify(QUICK))}${extra}`;
/** A turn's start: `POST /v1/chat/{chatId}/messages`. */
const isPost = (r: Request) => r.method() === 'POST' && /\/v1\/chat\/[^/]+\/messages$/.test(r.url());
/** A run's start (the React hook's): `POST /v1/runs`. */
const isRunPost = (r: Request) => r.method() === 'POST' && r.url().endsWith('/v1/runs');
/** The chat's events (a turn followed from another tab, or after a reload). */
const CHAT_EVENTS = /\/v1\/chat\/[^/]+\/events/;
/** id or class of the element focused inside the widget ('' when focus is outside it). */
const focused = (page: Page) =>
  page.evaluate(() => {
    const a = document.querySelector('edgestream-widget')!.shadowRoot!.activeElement;
    return a ? a.id || a.className : '';
  });
/** What the widget keeps: the chat's handle, in localStorage, per endpoint and agent. */
const CHAT_KEY = () => `edgestream-widget:${server.url}:`;
const storedChat = async (page: Page): Promise<{ chatId: string; token?: string } | null> =>
  JSON.parse((await page.evaluate((key) => localStorage.getItem(key), CHAT_KEY())) ?? 'null');
/** The conversation as the server keeps it. */
async function serverChat(chat: { chatId: string; token?: string }) {
  const res = await fetch(`${server.url}/v1/chat/${chat.chatId}/messages`, { headers: { Authorization: `Bearer ${chat.token}` } });
  return {
    status: res.status,
    body: (await res.json()) as { messages: { role: string; parts: { text: string }[] }[]; activeTurn: unknown },
  };
}

async function ask(page: Page, question: string) {
  await w(page, 'textarea').fill(question);
  await w(page, 'textarea').press('Enter');
}

/** The newest turn's answer once its run has ended. */
async function finalAnswer(page: Page, timeout = 90_000) {
  await page.waitForFunction(
    () => {
      const answer = document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.turn:last-child .answer');
      return answer?.getAttribute('data-streaming') === 'false' && answer.textContent!.length > 0;
    },
    undefined,
    { timeout },
  );
  return (await last(page, '.answer').textContent()) ?? '';
}

async function waitForText(page: Page, minLength: number) {
  await page.waitForFunction(
    (n) =>
      (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.turn:last-child .answer')?.textContent?.length ?? 0) >= n,
    minLength,
    { timeout: 30_000 },
  );
}

describe('widget embedded on another origin', () => {
  it('asks a question and streams the answer (CORS)', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    expect(await w(page, '.hint').isVisible()).toBe(true);
    await ask(page, 'What is edgestream?');
    expect(await w(page, '.hint').isHidden()).toBe(true);
    await expect.poll(() => w(page, '.plan li').count()).toBe(3);
    const text = await finalAnswer(page);
    expect(text).toBe(shownDemoText('What is edgestream?', OPTIONS));
    expect(await w(page, '.conn').textContent()).toBe('Completed');
    expect(await w(page, '.steps li').count()).toBeGreaterThanOrEqual(5);
    // the host page's CSS (red launcher, lime buttons) did not leak in
    const color = await w(page, '.launcher').evaluate((el) => getComputedStyle(el).color);
    expect(color).not.toBe('rgb(255, 0, 0)');
    await page.close();
  });

  it('survives a runtime kill and restart mid-answer with no duplicated or missing text', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    await ask(page, 'restart in the middle');
    await waitForText(page, 200);
    const persistDir = server.persistDir;
    await server.stop('SIGKILL');
    await startRuntime(persistDir);
    const text = await finalAnswer(page, 120_000);
    expect(text).toBe(shownDemoText('restart in the middle', OPTIONS));
    await page.close();
  });

  it('resumes the same answer after a page reload mid-answer', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    await ask(page, 'reload me');
    await waitForText(page, 150);
    await page.reload();
    expect(await w(page, '.question').textContent()).toBe('reload me');
    const text = await finalAnswer(page);
    expect(text).toBe(shownDemoText('reload me', OPTIONS));
    await page.close();
  });

  it('keeps a multi-turn conversation on the server: each turn sends only its question', async () => {
    const page = await freshPage(browser.context);
    await page.goto(quickUrl());
    const bodies: Array<{ text: string; messages?: unknown[] }> = [];
    page.on('request', (r) => isPost(r) && bodies.push(r.postDataJSON()));
    const questions = ['first question', 'second question', 'third question'];
    for (const q of questions) {
      await ask(page, q);
      expect(await finalAnswer(page)).toBe(shownDemoText(q, QUICK));
    }
    // every turn stays on screen with its own question, plan, answer and state
    expect(await w(page, '.turn').count()).toBe(3);
    expect(await w(page, '.question').allTextContents()).toEqual(questions);
    expect(await w(page, '.answer').allTextContents()).toEqual(questions.map((q) => shownDemoText(q, QUICK)));
    expect(await w(page, '.plan').count()).toBe(3);
    // the server packs the history: the widget sends no earlier turns
    expect(bodies.map((b) => b.text)).toEqual(questions);
    expect(bodies.every((b) => b.messages === undefined)).toBe(true);
    const stored = (await storedChat(page))!;
    expect(stored.chatId).toMatch(/^c_[\w-]{22}$/);
    expect(stored.token).toMatch(/^[\w-]{43}$/);
    const { body } = await serverChat(stored);
    expect(body.messages.map((m) => m.parts.map((p) => p.text).join(''))).toEqual(questions.flatMap((q) => [q, demoText(q, QUICK)]));
    // nothing of the conversation is kept in the browser beyond the handle
    expect(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('edgestream')))).toEqual([]);
    await page.close();
  });

  it('shows the conversation from the server after a reload, and New chat starts an empty one (a new chat on the server)', async () => {
    const page = await freshPage(browser.context);
    await page.goto(quickUrl());
    await ask(page, 'one');
    await finalAnswer(page);
    await ask(page, 'two');
    await finalAnswer(page);
    const first = (await storedChat(page))!;
    await page.reload();
    await expect
      .poll(() => w(page, '.answer').allTextContents(), { timeout: 20_000 })
      .toEqual([shownDemoText('one', QUICK), shownDemoText('two', QUICK)]);
    expect(await w(page, '.question').allTextContents()).toEqual(['one', 'two']);
    expect(await w(page, '.error').first().isHidden()).toBe(true);
    expect(await w(page, '.conn').textContent()).toBe('Completed');
    // the answers went through the markdown renderer, as live ones do
    expect(await w(page, '.answer p').count()).toBeGreaterThan(1);
    // the next question continues the same chat
    await ask(page, 'three');
    await finalAnswer(page);
    expect((await storedChat(page))!.chatId).toBe(first.chatId);

    await w(page, 'button:has-text("New chat")').click();
    expect(await w(page, '.turn').count()).toBe(0);
    expect(await w(page, '.hint').isVisible()).toBe(true);
    expect(await w(page, '.conn').textContent()).toBe('Idle');
    expect(await storedChat(page)).toBeNull();
    await page.reload();
    await w(page, 'textarea').waitFor();
    await page.waitForTimeout(500);
    expect(await w(page, '.turn').count()).toBe(0);
    expect(await w(page, '.hint').isVisible()).toBe(true);
    await ask(page, 'a new start');
    expect(await finalAnswer(page)).toBe(shownDemoText('a new start', QUICK));
    const second = (await storedChat(page))!;
    expect(second.chatId).not.toBe(first.chatId);
    expect((await serverChat(second)).body.messages).toHaveLength(2);
    // the forgotten chat is still on the server (until RUN_TTL_SECONDS after its last turn)
    expect((await serverChat(first)).body.messages).toHaveLength(6);
    await page.close();
  });

  it('forgets a stored chat the server does not have (expired) and starts a new one, with no error shown', async () => {
    const page = await freshPage(browser.context);
    await page.goto(quickUrl());
    await w(page, 'textarea').waitFor();
    const gone = { chatId: 'c_expiredExpiredExpired1', token: 'x'.repeat(43) };
    await page.evaluate(([key, value]) => localStorage.setItem(key!, value!), [CHAT_KEY(), JSON.stringify(gone)]);
    const read = page.waitForResponse((r) => r.url().includes(`/v1/chat/${gone.chatId}/messages`));
    await page.reload();
    expect((await read).status()).toBe(404);
    await page.waitForTimeout(300);
    expect(await w(page, '.turn').count()).toBe(0);
    expect(await w(page, '.hint').isVisible()).toBe(true);
    expect(await w(page, '.conn').textContent()).toBe('Idle');
    expect(await w(page, 'button[type=submit]').isDisabled()).toBe(false);
    expect(await storedChat(page)).toBeNull();
    await ask(page, 'after the expiry');
    expect(await finalAnswer(page)).toBe(shownDemoText('after the expiry', QUICK));
    expect(await w(page, '.error').isHidden()).toBe(true);
    const fresh = (await storedChat(page))!;
    expect(fresh.chatId).not.toBe(gone.chatId);
    expect((await serverChat(fresh)).body.messages).toHaveLength(2);
    await page.close();
  });

  it('two tabs show one conversation: a turn asked in tab A streams in tab B, and B reloaded mid-answer resumes it', async () => {
    const a = await freshPage(browser.context);
    await a.goto(site.url);
    await ask(a, 'asked in tab A');
    await waitForText(a, 40);
    // Tab B of the same site: the same localStorage, so the same chat.
    const b = await browser.context.newPage();
    await b.goto(site.url);
    await expect.poll(() => w(b, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['asked in tab A']);
    await waitForText(b, 80);
    // one question at a time, across tabs: B's Send waits for A's turn, and B may stop it
    expect(await w(b, 'button[type=submit]').isHidden()).toBe(true);
    expect(await w(b, 'button:has-text("Stop")').isVisible()).toBe(true);
    const before = await last(b, '.answer').evaluate((el) => el.textContent!.length);
    await b.reload();
    await expect.poll(() => w(b, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['asked in tab A']);
    const expected = shownDemoText('asked in tab A', OPTIONS);
    expect(await finalAnswer(b)).toBe(expected);
    expect(await finalAnswer(a)).toBe(expected);
    expect(expected.length).toBeGreaterThan(before);
    expect(await w(b, '.turn').count()).toBe(1);
    // a turn asked in B now shows in A on its next load
    await ask(b, 'asked in tab B');
    expect(await finalAnswer(b)).toBe(shownDemoText('asked in tab B', OPTIONS));
    await a.reload();
    await expect.poll(() => w(a, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['asked in tab A', 'asked in tab B']);
    expect(await w(a, '.answer').allTextContents()).toEqual([expected, shownDemoText('asked in tab B', OPTIONS)]);
    await b.close();
    await a.close();
  });

  it('a question sent while another tab is mid-turn (chat_busy) shows that turn running and keeps the question in the input', async () => {
    const a = await freshPage(browser.context);
    await a.goto(quickUrl());
    await ask(a, 'the first turn');
    await finalAnswer(a);
    // Tab B shows the same chat, idle; then A asks again (the handle is unchanged: B hears nothing of it).
    const b = await browser.context.newPage();
    await b.goto(quickUrl());
    await expect.poll(() => w(b, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['the first turn']);
    const slow = `${site.url}/?options=${encodeURIComponent(JSON.stringify(OPTIONS))}`;
    await a.goto(slow);
    await expect.poll(() => w(a, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['the first turn']);
    await ask(a, 'asked in A');
    await waitForText(a, 40);
    const refused = b.waitForResponse((r) => isPost(r.request()));
    await ask(b, 'asked in B meanwhile');
    expect((await refused).status()).toBe(409);
    await expect.poll(() => w(b, '.question').allTextContents(), { timeout: 20_000 }).toEqual(['the first turn', 'asked in A']);
    expect(await w(b, 'textarea').inputValue()).toBe('asked in B meanwhile');
    expect(await w(b, '.error').first().isHidden()).toBe(true);
    expect(await finalAnswer(b)).toBe(shownDemoText('asked in A', OPTIONS));
    // A's turn over, B asks its question
    await w(b, 'textarea').press('Enter');
    expect(await finalAnswer(b)).toBe(shownDemoText('asked in B meanwhile', OPTIONS));
    expect(await w(b, '.question').allTextContents()).toEqual(['the first turn', 'asked in A', 'asked in B meanwhile']);
    await b.close();
    await a.close();
  });

  it('ignores a run it no longer follows: New chat mid-answer stops it, and its late callbacks change nothing', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    const started = page.waitForResponse((r) => isPost(r.request()));
    await ask(page, 'abandon me');
    const oldId = ((await (await started).json()) as { requestId: string }).requestId;
    await waitForText(page, 40);
    const oldChat = (await storedChat(page))!.chatId;
    await page.evaluate(() =>
      document.addEventListener('edgestream:event', (e) => ((window as any).__events ??= []).push((e as CustomEvent).detail.requestId)),
    );
    // Hold the next start for a while so the new turn stays in 'connecting'.
    await page.route(/\/v1\/chat\/[^/]+\/messages$/, async (route) => {
      if (route.request().method() === 'POST') await new Promise((r) => setTimeout(r, 2_000));
      await route.continue();
    });
    const stop = page.waitForRequest((r) => r.url().endsWith(`/v1/chat/${oldChat}/stop`));
    // New chat and a new question in one task, so the old run's last callbacks
    // (its 'closed' after the disconnect) arrive while the new turn connects.
    await page.evaluate(() => {
      const root = document.querySelector('edgestream-widget')!.shadowRoot!;
      (root.querySelector('.new') as HTMLButtonElement).click();
      (window as any).__events = []; // whatever the old run delivers from now on is late
      root.querySelector('textarea')!.value = 'the new question';
      root.querySelector('form')!.requestSubmit();
    });
    await stop;
    await page.waitForTimeout(800); // the old run's 'closed' has long arrived
    expect(await w(page, '.conn').textContent()).toBe('Connecting…');
    expect(await w(page, '.question').allTextContents()).toEqual(['the new question']);
    const late: string[] = await page.evaluate(() => (window as any).__events);
    expect(late.filter((id) => id === oldId)).toEqual([]);
    expect(await finalAnswer(page)).toBe(shownDemoText('the new question', OPTIONS));
    expect(await w(page, '.conn').textContent()).toBe('Completed');
    expect((await storedChat(page))!.chatId).not.toBe(oldChat);
    await page.close();
  });

  it("the stop button stops the chat's turn: its run ends cancelled on the server", async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    const started = page.waitForResponse((r) => isPost(r.request()));
    await ask(page, 'stop me');
    const { requestId, runToken } = (await (await started).json()) as { requestId: string; runToken: string };
    await waitForText(page, 40);
    const stop = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/stop'));
    await w(page, 'button:has-text("Stop")').click();
    await stop;
    await expect.poll(() => w(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run cancelled.');
    const status = await waitForState(server.url, requestId, runToken);
    expect(status.state).toBe('cancelled');
    await page.close();
  });

  it("shows a failed run's error with a Retry button that asks again", async () => {
    const page = await freshPage(browser.context);
    await page.goto(`${site.url}/fail`);
    const posts: string[] = [];
    page.on('request', (r) => isPost(r) && posts.push(r.url()));
    await ask(page, 'fail please');
    await expect.poll(() => w(page, '.error span').textContent(), { timeout: 20_000 }).toMatch(/failed after 3 deltas/);
    expect(await w(page, '.final').textContent()).toBe('Run failed.');
    expect(await w(page, '.conn').textContent()).toBe('Failed');
    await w(page, '.error button').click();
    await expect.poll(() => posts.length, { timeout: 20_000 }).toBe(2);
    await expect.poll(() => w(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run failed.');
    // the failed turn is replaced, not repeated
    expect(await w(page, '.question').allTextContents()).toEqual(['fail please']);
    await page.close();
  });

  it('Retry resumes the same run after the connection was lost', async () => {
    const page = await freshPage(browser.context);
    // No backoff delays (full jitter of 0), so the reconnect attempts run out fast.
    await page.addInitScript(() => (Math.random = () => 0));
    const posts: string[] = [];
    page.on('request', (r) => isPost(r) && posts.push(r.url()));
    await page.goto(site.url);
    await ask(page, 'keep going');
    await waitForText(page, 40);
    await page.route(CHAT_EVENTS, (route) =>
      route.fulfill({
        status: 503,
        headers: { 'Access-Control-Allow-Origin': '*' },
        contentType: 'application/json',
        body: '{"error":{"code":"internal","message":"down"}}',
      }),
    );
    await page.reload(); // the resumed turn cannot connect: retries run out
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 30_000 })
      .toMatch(/^Lost the connection .* Retry to carry on\.$/);
    await page.unroute(CHAT_EVENTS);
    await last(page, '.retry').click();
    expect(await finalAnswer(page)).toBe(shownDemoText('keep going', OPTIONS));
    expect(await last(page, '.error').isHidden()).toBe(true);
    expect(posts).toHaveLength(1); // resumed, not asked again
    await page.close();
  });

  it('Retry asks again when the server refused the question', async () => {
    const page = await freshPage(browser.context);
    const posts: string[] = [];
    page.on('request', (r) => isPost(r) && posts.push(r.url()));
    await page.goto(quickUrl());
    let refuse = true;
    await page.route(/\/v1\/chat\/[^/]+\/messages$/, (route) => {
      if (!refuse || route.request().method() !== 'POST') return route.continue();
      refuse = false;
      return route.fulfill({
        status: 429,
        headers: { 'Access-Control-Allow-Origin': '*' },
        contentType: 'application/json',
        body: '{"error":{"code":"rate_limited","message":"Refused"}}',
      });
    });
    await ask(page, 'refused');
    await expect.poll(() => last(page, '.error span').textContent(), { timeout: 20_000 }).toBe('Refused.');
    await last(page, '.retry').click();
    await expect.poll(() => posts.length, { timeout: 20_000 }).toBe(2);
    expect(await finalAnswer(page)).toBe(shownDemoText('refused', QUICK));
    expect(await w(page, '.question').allTextContents()).toEqual(['refused']);
    await page.close();
  });

  it('works with the keyboard alone and never steals focus on load', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    await w(page, 'textarea').waitFor();
    // data-open="true" opens the panel but leaves focus with the page
    expect(await w(page, '.panel').isVisible()).toBe(true);
    expect(await focused(page)).toBe('');
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('launcher');
    await page.keyboard.press('Enter'); // the launcher toggles: closes
    expect(await w(page, '.panel').isHidden()).toBe(true);
    await page.keyboard.press('Enter'); // opens, and the user asked for it: focus the textarea
    expect(await w(page, '.panel').isVisible()).toBe(true);
    expect(await focused(page)).toBe('es-input');
    await page.keyboard.press('Escape');
    expect(await w(page, '.panel').isHidden()).toBe(true);
    expect(await focused(page)).toBe('launcher');
    await page.keyboard.press('Enter');
    expect(await focused(page)).toBe('es-input');
    // Send by keyboard: Send is disabled while the answer streams, so focus goes to the textarea
    await page.keyboard.type('keyboard question');
    await w(page, 'button[type=submit]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => w(page, 'button[type=submit]').isDisabled()).toBe(true);
    expect(await focused(page)).toBe('es-input');
    // Stop by keyboard: Stop disappears when the run ends, so focus goes to the textarea
    await waitForText(page, 20);
    await w(page, 'button:has-text("Stop")').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => last(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run cancelled.');
    expect(await w(page, 'button:has-text("Stop")').isHidden()).toBe(true);
    expect(await focused(page)).toBe('es-input');
    await page.close();
  });

  it('reopens a restored conversation without taking focus', async () => {
    const page = await freshPage(browser.context);
    await page.goto(quickUrl('&open=false'));
    await w(page, '.launcher').waitFor();
    expect(await w(page, '.panel').isHidden()).toBe(true);
    await w(page, '.launcher').click();
    expect(await focused(page)).toBe('es-input');
    await ask(page, 'remember me');
    await finalAnswer(page);
    await page.reload();
    await expect.poll(() => w(page, '.answer').textContent(), { timeout: 20_000 }).toBe(shownDemoText('remember me', QUICK));
    expect(await w(page, '.panel').isVisible()).toBe(true);
    expect(await focused(page)).toBe('');
    await page.close();
  });

  it('announces stages and the end once, not every fragment, and stays quiet while replaying', async () => {
    const page = await freshPage(browser.context);
    await page.goto(site.url);
    await w(page, 'textarea').waitFor();
    // Record what the live region says.
    await page.evaluate(() => {
      const live = document.querySelector('edgestream-widget')!.shadowRoot!.querySelector('[aria-live]')!;
      const said: string[] = ((window as any).__said = []);
      new MutationObserver(() => said.push(live.textContent!)).observe(live, { childList: true, characterData: true, subtree: true });
    });
    await ask(page, 'announce this');
    await waitForText(page, 40);
    expect(await last(page, '.answer').getAttribute('aria-live')).toBeNull();
    expect(await last(page, '.answer').getAttribute('aria-busy')).toBe('true');
    expect(await w(page, '.steps [aria-current="step"]').allTextContents()).toEqual(['Writing the answer']);
    await finalAnswer(page);
    expect(await last(page, '.answer').getAttribute('aria-busy')).toBe('false');
    expect(await w(page, '.steps [aria-current]').count()).toBe(0);
    const said: string[] = await page.evaluate(() => (window as any).__said);
    expect(said.at(-1)).toBe('Answer complete');
    expect(said.filter((s) => s === 'Answer complete')).toHaveLength(1);
    expect(said).toContain('Writing the answer');
    expect(said.length).toBeLessThanOrEqual(4); // three stages and the end, not 250 deltas
    await page.reload();
    await finalAnswer(page);
    expect(await w(page, '.turn .answer').textContent()).toBe(shownDemoText('announce this', OPTIONS));
    expect(await w(page, '[aria-live]').textContent()).toBe(''); // a replay says nothing
    await page.close();
  });

  it('follows new text only while the reader is at the bottom', async () => {
    const page = await freshPage(browser.context);
    // Long enough to scroll: the demo's notes one after the other, 2,000 characters.
    await page.goto(`${site.url}/?options=${encodeURIComponent(JSON.stringify({ tokens: 2000, delayMs: 10 }))}`);
    await ask(page, 'a long answer to scroll through');
    await waitForText(page, 800);
    const gap = () => w(page, '.body').evaluate((b) => b.scrollHeight - b.scrollTop - b.clientHeight);
    const scrollTop = () => w(page, '.body').evaluate((b) => b.scrollTop);
    expect(await w(page, '.body').evaluate((b) => b.scrollHeight > b.clientHeight + 100)).toBe(true);
    expect(await gap()).toBeLessThan(40); // following the answer
    await w(page, '.body').evaluate((b) => (b.scrollTop = 0)); // the reader scrolls up
    await waitForText(page, 1050);
    expect(await scrollTop()).toBe(0); // not yanked back down
    await w(page, '.body').evaluate((b) => (b.scrollTop = b.scrollHeight)); // back at the bottom: follow again
    const before = await last(page, '.answer').evaluate((a) => a.textContent!.length);
    await waitForText(page, before + 120);
    expect(await gap()).toBeLessThan(40);
    await finalAnswer(page);
    await page.close();
  });

  it('renders model text as text, never as HTML', async () => {
    const page = await freshPage(browser.context);
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
    const page = await freshPage(browser.context);
    await page.goto(quickUrl());
    await page.evaluate((t) => document.querySelector('edgestream-widget')!.setAttribute('data-theme', t), theme);
    await ask(page, 'What is edgestream?');
    await finalAnswer(page);
    await ask(page, 'Show me the plan and the answer');
    await finalAnswer(page);
    await w(page, '.body').evaluate((el) => (el.scrollTop = 120)); // the end of the first turn and the whole second
    const file = join(SHOTS, `widget-${theme}.png`);
    await page.screenshot({ path: file });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    await page.close();
  });
});

describe('React hook', () => {
  const REACT = { tokens: 150, delayMs: 20 };
  const text = (page: Page, id: string) => page.locator(`#${id} .text`).textContent();

  it('streams, resumes after unmount/remount, shows a finished answer again, and cleans up on unmount', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/react`);
    const post = page.waitForRequest(isRunPost);
    await page.click('#a .start');
    const request = await post;
    await page.waitForFunction(() => (document.querySelector('#a .text')?.textContent?.length ?? 0) > 50);
    expect(await page.locator('#a .plan li').count()).toBe(3);
    // unmount: disconnects (the stream is aborted), does not cancel
    const aborted = page.waitForEvent('requestfailed', (r) => r === request);
    await page.click('#toggle');
    expect((await aborted).failure()?.errorText).toMatch(/ABORTED/);
    await page.click('#toggle'); // mount: resumes the same run from sessionStorage
    await expect.poll(() => page.locator('#a .run-state').textContent(), { timeout: 60_000 }).toBe('completed');
    expect(await text(page, 'a')).toBe(demoText('react hook question a', REACT));
    // the other component has its own key: it did not pick up this run
    expect(await text(page, 'b')).toBe('');
    // a remount after the run finished replays the finished answer
    await page.click('#toggle');
    await page.click('#toggle');
    await expect.poll(() => page.locator('#a .run-state').textContent(), { timeout: 20_000 }).toBe('completed');
    expect(await text(page, 'a')).toBe(demoText('react hook question a', REACT));
    expect(Number(await page.locator('#a .events').textContent())).toBe(1 + 6 + REACT.tokens + 2);
    expect(await text(page, 'b')).toBe('');
    await page.close();
  });

  it('cancel() cancels the run and disconnect() stops following it', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/react`);
    await page.click('#a .start');
    await page.click('#b .start');
    await page.waitForFunction(() => ['#a', '#b'].every((id) => (document.querySelector(`${id} .text`)?.textContent?.length ?? 0) > 30));
    await page.click('#a .cancel');
    await page.click('#b .disconnect');
    await expect.poll(() => page.locator('#a .run-state').textContent(), { timeout: 20_000 }).toBe('cancelled');
    await expect.poll(() => page.locator('#b .state').textContent(), { timeout: 20_000 }).toBe('closed');
    const stopped = (await text(page, 'b'))!.length;
    await page.waitForTimeout(600);
    expect((await text(page, 'b'))!.length).toBe(stopped); // nothing more arrives
    expect(await page.locator('#b .run-state').textContent()).toBe('');
    const full = demoText('react hook question b', REACT);
    expect(stopped).toBeLessThan(full.length);
    // the disconnected run went on without a reader: a remount replays it to its end
    await page.click('#toggle');
    await page.click('#toggle');
    await expect.poll(() => page.locator('#b .run-state').textContent(), { timeout: 60_000 }).toBe('completed');
    expect(await text(page, 'b')).toBe(full);
    await expect.poll(() => page.locator('#a .run-state').textContent(), { timeout: 20_000 }).toBe('cancelled');
    expect(demoText('react hook question a', REACT).startsWith((await text(page, 'a'))!)).toBe(true);
    await page.close();
  });

  it('renders a burst of events in a few batched renders, with the exact text', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/react`);
    const before = Number(await page.locator('#fast .renders').textContent());
    await page.click('#fast .start');
    await expect.poll(() => page.locator('#fast .run-state').textContent(), { timeout: 60_000 }).toBe('completed');
    expect(await text(page, 'fast')).toBe(demoText('react hook question fast', { tokens: 3000, delayMs: 0 }));
    expect(Number(await page.locator('#fast .events').textContent())).toBe(1 + 6 + 3000 + 2);
    // at most one render per animation frame, not one per event
    expect(Number(await page.locator('#fast .renders').textContent()) - before).toBeLessThan(300);
    await page.close();
  });

  it("falls back to a result's text without deltas, and forgets a stored run the server no longer has", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/react`);
    const event = (seq: number, body: Record<string, unknown>) =>
      `id: ${seq}\nevent: ${body.type}\ndata: ${JSON.stringify({ requestId: 'react_fake', seq, ts: 1, ...body })}\n\n`;
    // An agent that sends its answer whole, with no deltas (a run the server never had).
    await page.route(`${server.url}/v1/runs`, (route) =>
      route.fulfill({
        status: 200,
        headers: {
          'Content-Type': 'text/event-stream',
          'Access-Control-Allow-Origin': site.url,
          'Access-Control-Expose-Headers': 'X-Request-Id, X-Run-Token',
          'X-Request-Id': 'react_fake',
          'X-Run-Token': 'fake_token',
        },
        body:
          event(1, { type: 'run', agent: 'fake', createdAt: 1 }) +
          event(2, { type: 'result', messageId: 'm1', text: 'The whole answer at once.' }) +
          event(3, { type: 'done', state: 'completed' }),
      }),
    );
    await page.click('#a .start');
    await expect.poll(() => page.locator('#a .run-state').textContent(), { timeout: 20_000 }).toBe('completed');
    expect(await text(page, 'a')).toBe('The whole answer at once.');
    await page.unroute(`${server.url}/v1/runs`);
    // remount: the stored run is unknown to the server (404), so the view is empty, with no error
    const replay = page.waitForResponse((r) => r.url().includes('/v1/runs/react_fake/events'));
    await page.click('#toggle');
    await page.click('#toggle');
    expect((await replay).status()).toBe(404);
    await expect.poll(() => page.locator('#a .state').textContent()).toBe('closed');
    expect(await text(page, 'a')).toBe('');
    expect(await page.evaluate((e) => sessionStorage.getItem(`edgestream-react:${e}`), server.url)).toBeNull();
    await page.close();
  });
});
