// The widget passes a profile's human check in Debian's Chromium: Turnstile
// (a fake client script, verified by the fake siteverify through wrangler dev)
// and start tickets from the embedding site's own backend.
import type { Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shownDemoText } from './shown-text';
import { freshPage, launchBrowser } from '../support/browser';
import { freePort, startDevServer, type DevServer } from '../support/dev-server';
import { startFakeTurnstile, type FakeTurnstile } from '../support/fake-turnstile';
import { installFakeTurnstile } from './fake-turnstile-api';
import { SESSION_COOKIE, startHostSite, type HostSite } from './host-site';

/** Cloudflare's test site key that always passes; only handed to the page here. */
const SITE_KEY = '1x00000000000000000000AA';
const TICKET_SECRET = 'browser-test-ticket-secret-0123456789abcdef';
/** Short answers: the profiles fix the demo's options (clientOptions is empty). */
const DEMO = { tokens: 5, delayMs: 0 };
const PROFILES = {
  widget: { agent: 'demo', humanCheck: 'turnstile', default: true, options: DEMO },
  ticketed: { agent: 'demo', humanCheck: 'ticket', options: DEMO },
};

let server: DevServer;
let site: HostSite;
let fake: FakeTurnstile;
let browser: Awaited<ReturnType<typeof launchBrowser>>;

beforeAll(async () => {
  const port = await freePort();
  fake = await startFakeTurnstile();
  site = await startHostSite(`http://127.0.0.1:${port}`, {}, { ticket: { secret: TICKET_SECRET, defaultProfile: 'widget' } });
  server = await startDevServer({
    port,
    vars: {
      ALLOWED_ORIGINS: site.url,
      HEARTBEAT_MS: '1000',
      TURNSTILE_SECRET_KEY: fake.secret,
      TURNSTILE_VERIFY_URL: fake.url,
      TURNSTILE_SITE_KEY: SITE_KEY,
      TICKET_SECRET,
      PROFILES: JSON.stringify(PROFILES),
    },
  });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
  await fake?.close();
});

const w = (page: Page, selector: string) => page.locator(`edgestream-widget ${selector}`);
const last = (page: Page, selector: string) => w(page, `.turn:last-child ${selector}`);
/** A turn's start: `POST /v1/chat/{chatId}/messages`. */
const isPost = (r: Request) => r.method() === 'POST' && /\/v1\/chat\/[^/]+\/messages$/.test(r.url());

async function ask(page: Page, question: string) {
  await w(page, 'textarea').fill(question);
  await w(page, 'textarea').press('Enter');
}

/** The newest turn's answer once its run has ended. */
async function finalAnswer(page: Page) {
  await page.waitForFunction(
    () => {
      const answer = document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.turn:last-child .answer');
      return answer?.getAttribute('data-streaming') === 'false' && answer.textContent!.length > 0;
    },
    undefined,
    { timeout: 60_000 },
  );
  return (await last(page, '.answer').textContent()) ?? '';
}

/** Every value the page keeps in sessionStorage and localStorage, joined. */
const stored = (page: Page) => page.evaluate(() => [...Object.values(sessionStorage), ...Object.values(localStorage)].join('\n'));

async function signIn(page: Page) {
  await page.context().addCookies([{ name: SESSION_COOKIE, value: 'alice', url: site.url }]);
}

describe('widget on a Turnstile profile', () => {
  it('renders Turnstile in the light DOM, sends its token, the answer streams, and the next question uses a new token', async () => {
    const page = await freshPage(browser.context);
    const api = await installFakeTurnstile(page, () => fake.goodToken());
    const bodies: Array<Record<string, unknown>> = [];
    page.on('request', (r) => isPost(r) && bodies.push(r.postDataJSON()));
    const checksBefore = fake.requests.length;
    await page.goto(site.url);

    await ask(page, 'first human question');
    expect(await finalAnswer(page)).toBe(shownDemoText('first human question', DEMO));
    expect(await last(page, '.error').isHidden()).toBe(true);
    // the site key came from /v1/agents; api.js loaded explicitly; the widget sits in the host's light DOM
    expect(api.loads).toEqual(['https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit']);
    const calls = await api.calls();
    expect(calls.renders).toEqual([
      { sitekey: SITE_KEY, theme: 'light', appearance: 'interaction-only', container: 'widget host (light DOM)' },
    ]);
    expect(await page.locator('edgestream-widget > [slot="turnstile"] input[name="cf-turnstile-response"]').count()).toBe(1);
    expect(bodies).toHaveLength(1);
    const first = bodies[0]!.turnstileToken;
    expect(first).toBe(api.minted[0]);
    // the fake siteverify saw that token, with the deployment's secret
    const checks = fake.requests.slice(checksBefore);
    expect(checks.map((r) => r.form.response)).toEqual([first]);
    expect(checks[0]!.form.secret).toBe(fake.secret);

    await ask(page, 'second human question');
    expect(await finalAnswer(page)).toBe(shownDemoText('second human question', DEMO));
    expect(bodies).toHaveLength(2);
    const second = bodies[1]!.turnstileToken;
    expect(second).toEqual(expect.any(String));
    expect(second).not.toBe(first); // single-use: the widget was reset for the next question
    expect(fake.requests.slice(checksBefore).map((r) => r.form.response)).toEqual([first, second]);
    expect(api.loads).toHaveLength(1); // the script is loaded once
    expect((await api.calls()).renders).toHaveLength(1); // and rendered once, then reset
    expect((await api.calls()).resets).toBeGreaterThanOrEqual(2);
    // neither token was kept anywhere the page stores things
    const kept = await stored(page);
    expect(kept).not.toContain(first);
    expect(kept).not.toContain(second);
    await page.close();
  });

  it('says when Turnstile fails, and Retry asks again with a fresh token', async () => {
    const page = await freshPage(browser.context);
    const api = await installFakeTurnstile(page, () => fake.goodToken());
    await page.addInitScript(() => ((window as { __fakeTurnstileFail?: string }).__fakeTurnstileFail = '300030'));
    const posts: Array<Record<string, unknown>> = [];
    page.on('request', (r) => isPost(r) && posts.push(r.postDataJSON()));
    await page.goto(site.url);
    await ask(page, 'turnstile fails first');
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 20_000 })
      .toBe('This site could not confirm you are human (Turnstile error 300030).');
    expect(posts).toEqual([]); // no evidence, no start
    expect(await w(page, 'button[type="submit"]').isDisabled()).toBe(false);
    await page.evaluate(() => delete (window as { __fakeTurnstileFail?: string }).__fakeTurnstileFail);
    await last(page, '.retry').click();
    expect(await finalAnswer(page)).toBe(shownDemoText('turnstile fails first', DEMO));
    expect(await w(page, '.question').allTextContents()).toEqual(['turnstile fails first']);
    expect(posts).toHaveLength(1);
    // A token minted after the failure (the widget may already have made the next one after it: it resets at once).
    expect(api.minted).toContain(posts[0]!.turnstileToken);
    await page.close();
  });

  it('a token the server refuses shows 403 human_check_failed in words, with Retry', async () => {
    const page = await freshPage(browser.context);
    // Tokens siteverify has never issued: the check fails (invalid-input-response).
    let forged = 0;
    const api = await installFakeTurnstile(page, () => (forged++ === 0 ? `0.forged-${crypto.randomUUID()}` : fake.goodToken()));
    const answers: number[] = [];
    const tokens: unknown[] = [];
    page.on('request', (r) => isPost(r) && tokens.push(r.postDataJSON().turnstileToken));
    page.on('response', (r) => isPost(r.request()) && answers.push(r.status()));
    await page.goto(site.url);
    await ask(page, 'refused at first');
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 20_000 })
      .toBe('This site needs to confirm you are human: the Turnstile check failed: invalid-input-response.');
    expect(answers).toEqual([403]);
    await last(page, '.retry').click();
    expect(await finalAnswer(page)).toBe(shownDemoText('refused at first', DEMO));
    expect(answers).toEqual([403, 201]); // refused, then the turn that created the chat
    // the retry took the token made after the refused one, not the refused one again
    expect(tokens).toEqual([api.minted[0], api.minted[1]]);
    await page.close();
  });
});

describe('widget on a ticket profile (data-ticket-url)', () => {
  const ticketPage = `/?agent=ticketed&ticket`;

  it("gets a ticket from the site's backend with its cookies before each start, and the answer streams", async () => {
    const page = await freshPage(browser.context);
    const api = await installFakeTurnstile(page, () => fake.goodToken());
    await signIn(page);
    site.ticket!.mode = 'ok';
    const seen = site.ticket!.requests.length;
    const bodies: Array<Record<string, unknown>> = [];
    page.on('request', (r) => isPost(r) && bodies.push(r.postDataJSON()));
    await page.goto(`${site.url}${ticketPage}`);
    for (const q of ['ticket question one', 'ticket question two']) {
      await ask(page, q);
      expect(await finalAnswer(page)).toBe(shownDemoText(q, DEMO));
    }
    const requests = site.ticket!.requests.slice(seen);
    expect(requests).toHaveLength(2); // one ticket per start
    for (const r of requests) {
      expect(r.method).toBe('POST');
      expect(r.cookie).toContain(`${SESSION_COOKIE}=alice`); // credentials: 'include'
      expect(r.contentType).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual({ agent: 'ticketed' });
    }
    expect(bodies.map((b) => b.ticket)).toEqual(requests.map((r) => r.ticket));
    expect(bodies.every((b) => b.turnstileToken === undefined)).toBe(true);
    expect(api.loads).toEqual([]); // a ticket site loads no Turnstile
    const kept = await stored(page);
    for (const r of requests) expect(kept).not.toContain(r.ticket);
    await page.close();
  });

  it('shows a failing ticket endpoint as an error, and Retry recovers once it works', async () => {
    const page = await freshPage(browser.context);
    await signIn(page);
    site.ticket!.mode = 'fail';
    const posts: string[] = [];
    page.on('request', (r) => isPost(r) && posts.push(r.url()));
    await page.goto(`${site.url}${ticketPage}`);
    await ask(page, 'ticket endpoint down');
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 20_000 })
      .toBe('This site could not confirm you are human (HTTP 503).');
    expect(await w(page, '.conn').textContent()).toBe('Idle');
    expect(posts).toEqual([]);
    await last(page, '.retry').click(); // still down
    await expect
      .poll(() => site.ticket!.requests.filter((r) => r.ticket === undefined).length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(2);
    await expect.poll(() => last(page, '.error').isVisible()).toBe(true);
    site.ticket!.mode = 'ok';
    await last(page, '.retry').click();
    expect(await finalAnswer(page)).toBe(shownDemoText('ticket endpoint down', DEMO));
    expect(await w(page, '.question').allTextContents()).toEqual(['ticket endpoint down']);
    expect(posts).toHaveLength(1);
    await page.close();
  });

  it('a ticket the service refuses (403 human_check_failed) is shown in words; Retry fetches a fresh one', async () => {
    const page = await freshPage(browser.context);
    await signIn(page);
    site.ticket!.mode = 'wrong-secret';
    const answers: number[] = [];
    page.on('response', (r) => isPost(r.request()) && answers.push(r.status()));
    await page.goto(`${site.url}${ticketPage}`);
    await ask(page, 'badly signed');
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 20_000 })
      .toBe("This site needs to confirm you are human: the ticket's signature does not match.");
    expect(answers).toEqual([403]);
    site.ticket!.mode = 'ok';
    const before = site.ticket!.requests.length;
    await last(page, '.retry').click();
    expect(await finalAnswer(page)).toBe(shownDemoText('badly signed', DEMO));
    expect(site.ticket!.requests.length).toBe(before + 1);
    expect(answers).toEqual([403, 201]); // refused, then the turn that created the chat
    await page.close();
  });

  it('a visitor the site does not know gets no ticket (401), and no run starts', async () => {
    const page = await freshPage(browser.context);
    await page.context().clearCookies();
    site.ticket!.mode = 'ok';
    const posts: string[] = [];
    page.on('request', (r) => isPost(r) && posts.push(r.url()));
    await page.goto(`${site.url}${ticketPage}`);
    await ask(page, 'who are you');
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 20_000 })
      .toBe('This site could not confirm you are human (HTTP 401).');
    expect(posts).toEqual([]);
    await page.close();
  });
});
