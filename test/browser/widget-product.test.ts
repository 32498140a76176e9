// The widget as a product, in Debian's Chromium: failures a person understands,
// the phone layout, rich text that stays inert, and no accessibility violations.
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freshPage, launchBrowser } from '../support/browser';
import { demoText } from '../e2e/demo-reference';
import { ROOT, freePort, startDevServer, type DevServer } from '../support/dev-server';
import { fixtureEvents } from '../support/fake-openai';
import { startHostSite, type HostSite } from './host-site';
import { renderedText, shownDemoText } from './shown-text';

const SHOTS = join(ROOT, 'test-results', 'screenshots');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** The answer to a question, in pieces over a few seconds: long enough to cut the network in the middle. */
const SLOW = { tokens: 120, delayMs: 40 };
const QUICK = { tokens: 30, delayMs: 5 };

/**
 * A hostile model answer: rich text the widget must render, and HTML, script
 * URLs and an image it must leave inert. Streamed by a local stand-in for
 * an OpenAI-compatible API (its real wire format: the recorded fixture's
 * chunks, with this text as their content).
 */
const HOSTILE = [
  'Here is **bold**, *emphasis* and `inline <b>code</b>`.\n\n',
  '- first item\n- second item with [a safe link](https://example.com/docs)\n\n',
  '1. one\n2. two\n\n',
  '```\n<script>window.pwned = 1</script>\n```\n\n',
  'Raw HTML: <img src=x onerror="window.pwned = 2"> and <a href="javascript:window.pwned=3">html link</a>.\n\n',
  'A [script link](javascript:window.pwned=4) and a [data link](data:text/html,<script>1</script>).\n\n',
  'An image: ![tracking pixel](http://127.0.0.1:9/pixel.png) and a table:\n\n',
  '| a | b |\n| - | - |\n| 1 | 2 |\n',
];

function hostileOpenAI() {
  const events = fixtureEvents('plain');
  const template = JSON.parse(events[1]!.slice('data: '.length));
  const chunk = (content: string) => {
    const c = structuredClone(template);
    c.choices[0].delta = { content };
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  // Split every piece in two, so markdown markers straddle deltas as a model's tokens do.
  const pieces = HOSTILE.flatMap((p) => [p.slice(0, Math.ceil(p.length / 2)), p.slice(Math.ceil(p.length / 2))]);
  const server = createServer(async (req, res) => {
    for await (const _ of req); // the request body is not needed
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
    res.write(events[0]);
    for (const p of pieces) {
      res.write(chunk(p));
      await new Promise((r) => setTimeout(r, 30));
    }
    for (const e of events.slice(-3)) res.write(e); // stop, usage, [DONE]
    res.end();
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    }),
  );
}

let server: DevServer;
/** A site whose origin is in ALLOWED_ORIGINS. */
let site: HostSite;
/** A site whose origin is not. */
let stranger: HostSite;
let fake: Awaited<ReturnType<typeof hostileOpenAI>>;
let browser: Awaited<ReturnType<typeof launchBrowser>>;

beforeAll(async () => {
  fake = await hostileOpenAI();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  site = await startHostSite(endpoint, { 'data-options': JSON.stringify(SLOW) });
  stranger = await startHostSite(endpoint, { 'data-options': JSON.stringify(QUICK) });
  server = await startDevServer({
    port,
    vars: {
      ALLOWED_ORIGINS: site.url,
      HEARTBEAT_MS: '1000',
      RETRY_MS: '200',
      OPENAI_BASE_URL: `${fake.url}/v1`,
      OPENAI_API_KEY: 'sk-test-not-a-real-key',
    },
  });
  browser = await launchBrowser();
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
  await stranger?.close();
  await fake?.close();
});

const w = (page: Page, selector: string) => page.locator(`edgestream-widget ${selector}`);
const last = (page: Page, selector: string) => w(page, `.turn:last-child ${selector}`);
const withOptions = (base: string, options: object, extra = '') =>
  `${base}/?options=${encodeURIComponent(JSON.stringify(options))}${extra}`;

async function ask(page: Page, question: string) {
  await w(page, 'textarea').fill(question);
  await w(page, 'textarea').press('Enter');
}

async function finalAnswer(page: Page, timeout = 60_000) {
  await page.waitForFunction(
    () => {
      const a = document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.turn:last-child .answer');
      return a?.getAttribute('data-streaming') === 'false' && a.textContent!.length > 0;
    },
    undefined,
    { timeout },
  );
  return (await last(page, '.answer').textContent()) ?? '';
}

const answerLength = (page: Page) => last(page, '.answer').evaluate((a) => a.textContent!.length);

/** Is the element fully inside the scrolled message list's visible part (and the viewport)? */
const inView = (page: Page, selector: string) =>
  w(page, selector).evaluate((el) => {
    const list = el.closest('.body')!.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= list.top - 1 && r.bottom <= list.bottom + 1 && r.bottom <= innerHeight;
  });

async function newPage(viewport = DESKTOP, colorScheme: 'light' | 'dark' = 'light') {
  const page = await freshPage(browser.context);
  await page.setViewportSize(viewport);
  await page.emulateMedia({ colorScheme });
  return page;
}

/** axe-core over the whole page, the widget's shadow root included (axe walks open shadow roots). */
async function axe(page: Page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // Every default rule, plus two that matter here whether or not a version enables them by default.
    const rules = { 'label-content-name-mismatch': { enabled: true }, 'target-size': { enabled: true } };
    const run = (ctx: unknown) => (window as any).axe.run(ctx, { resultTypes: ['violations'], rules });
    const all = await run(document);
    const widget = await run({ include: [{ fromShadowDom: ['edgestream-widget', '.panel'] }] });
    const brief = (r: any) => r.violations.map((v: any) => ({ id: v.id, nodes: v.nodes.map((n: any) => n.target.join(' ')) }));
    return { page: brief(all), widget: brief(widget), widgetChecked: widget.passes?.length ?? -1 };
  });
  return result;
}

describe('failures a person understands', () => {
  it('a site whose origin is not allowed is told so, with the setting that fixes it, in the widget and the console', async () => {
    const page = await newPage();
    const console: string[] = [];
    page.on('console', (m) => console.push(m.text()));
    await page.goto(stranger.url);
    await ask(page, 'hello from a stranger');
    const error = last(page, '.error span');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await error.textContent()).toBe(
      `This site (${stranger.url}) is not allowed to use this chat service. The site's owner can fix it: add ${stranger.url} to ALLOWED_ORIGINS in the service's settings.`,
    );
    expect(await w(page, '.conn').textContent()).toBe('Not allowed');
    expect(console.some((line) => line.includes('ALLOWED_ORIGINS') && line.includes(stranger.url))).toBe(true);
    expect(await inView(page, '.turn:last-child .error')).toBe(true);
    expect(await last(page, '.retry').isVisible()).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'product-origin-not-allowed.png') });
    await page.close();
  });

  it('with ALLOWED_ORIGINS unset (the default), a site on another origin is told the same', async () => {
    const bare = await startDevServer({ vars: { HEARTBEAT_MS: '1000' } });
    onTestFinished(() => bare.stop());
    const other = await startHostSite(bare.url, { 'data-options': JSON.stringify(QUICK) });
    onTestFinished(() => other.close());
    const page = await newPage();
    await page.goto(other.url);
    await ask(page, 'hello without any CORS settings');
    const error = last(page, '.error span');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    expect(await error.textContent()).toContain(`add ${other.url} to ALLOWED_ORIGINS in the service's settings.`);
    // the demo page, on the service's own origin, needs no setting at all
    await page.goto(`${bare.url}/`);
    await ask(page, 'hello from home');
    expect(await finalAnswer(page)).toBe(shownDemoText('hello from home', {}));
    await page.close();
  });

  it('offline mid-answer says so, and carries on by itself when the network is back, with the exact text', async () => {
    const page = await newPage();
    const posts: string[] = [];
    page.on('request', (r) => r.method() === 'POST' && /\/v1\/chat\/[^/]+\/messages$/.test(r.url()) && posts.push(r.url()));
    await page.goto(site.url);
    const question = 'What happens when the network drops?';
    await ask(page, question);
    await page.waitForFunction(
      () => (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.answer')?.textContent?.length ?? 0) > 40,
    );
    await browser.context.setOffline(true);
    try {
      await expect.poll(() => w(page, '.conn').textContent(), { timeout: 15_000 }).toBe('Offline');
      expect(await last(page, '.notice').textContent()).toBe(
        'You are offline. The answer will carry on by itself when the connection is back.',
      );
      expect(await inView(page, '.turn:last-child .notice')).toBe(true);
      await page.screenshot({ path: join(SHOTS, 'product-offline.png') });
      const before = await answerLength(page);
      await page.waitForTimeout(1_500); // offline for a while: nothing arrives, nothing breaks
      expect(await answerLength(page)).toBe(before);
    } finally {
      await browser.context.setOffline(false);
    }
    expect(await finalAnswer(page)).toBe(shownDemoText(question, SLOW));
    expect(await last(page, '.notice').isHidden()).toBe(true);
    expect(await last(page, '.error').isHidden()).toBe(true);
    expect(await w(page, '.conn').textContent()).toBe('Completed');
    expect(posts).toHaveLength(1); // resumed, never asked again
    await page.close();
  });

  it('a question asked offline says it could not reach the service, and is asked by itself when the network is back', async () => {
    const page = await newPage();
    const posts: string[] = [];
    page.on('request', (r) => r.method() === 'POST' && /\/v1\/chat\/[^/]+\/messages$/.test(r.url()) && posts.push(r.url()));
    await page.goto(withOptions(site.url, QUICK));
    await w(page, 'textarea').waitFor();
    await browser.context.setOffline(true);
    try {
      await ask(page, 'asked while offline');
      await expect.poll(() => last(page, '.error span').textContent(), { timeout: 15_000 }).toBe('Could not reach the chat service.');
      expect(await last(page, '.retry').isVisible()).toBe(true);
    } finally {
      await browser.context.setOffline(false);
    }
    expect(await finalAnswer(page)).toBe(shownDemoText('asked while offline', QUICK));
    expect(await last(page, '.error').isHidden()).toBe(true);
    expect(await w(page, '.question').allTextContents()).toEqual(['asked while offline']);
    expect(posts.length).toBeGreaterThanOrEqual(1);
    await page.close();
  });

  it('a connection given up on shows its error in view with Retry, and resumes by itself when the tab is looked at again', async () => {
    const page = await newPage();
    await page.addInitScript(() => (Math.random = () => 0)); // no backoff delays: the attempts run out fast
    await page.goto(site.url);
    const question = 'keep this one';
    await ask(page, question);
    await page.waitForFunction(
      () => (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.answer')?.textContent?.length ?? 0) > 20,
    );
    // The chat's events: how a reloaded page follows the turn still running.
    const events = /\/v1\/chat\/[^/]+\/events/;
    await page.route(events, (route) =>
      route.fulfill({
        status: 503,
        headers: { 'Access-Control-Allow-Origin': '*' },
        contentType: 'application/json',
        body: '{"error":{"code":"internal","message":"down"}}',
      }),
    );
    await page.reload(); // the running turn cannot be followed: the attempts run out
    await expect
      .poll(() => last(page, '.error span').textContent(), { timeout: 30_000 })
      .toBe('Lost the connection to the chat service. The answer is kept on the server: Retry to carry on.');
    expect(await w(page, '.conn').textContent()).toBe('Disconnected');
    expect(await inView(page, '.turn:last-child .error')).toBe(true);
    expect(await last(page, '.work summary').textContent()).toMatch(/^Interrupted at: /);
    await page.unroute(events);
    // The tab becomes visible again (headless pages always are; the event is what the widget listens to).
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    expect(await finalAnswer(page)).toBe(shownDemoText(question, SLOW));
    expect(await last(page, '.error').isHidden()).toBe(true);
    await page.close();
  });

  it('a stopped answer looks stopped: no check mark on the step it stopped in', async () => {
    const page = await newPage();
    await page.goto(site.url);
    await ask(page, 'stop me early');
    await page.waitForFunction(
      () => (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.answer')?.textContent?.length ?? 0) > 20,
    );
    await w(page, 'button:has-text("Stop")').click();
    await expect.poll(() => last(page, '.final').textContent(), { timeout: 20_000 }).toBe('Run cancelled.');
    expect(await last(page, '.work summary').textContent()).toBe('Stopped at: Writing the answer');
    const marker = await last(page, '.steps li:not(.tool):last-child').evaluate((li) => getComputedStyle(li, '::before').content);
    expect(marker).toBe('"✕ "');
    expect(await w(page, '.conn').textContent()).toBe('Cancelled');
    await page.close();
  });
});

describe('layout', () => {
  it('on a phone the panel fills the screen, the launcher hides, targets are 44 px and the input 16 px', async () => {
    const page = await newPage(PHONE);
    await page.goto(withOptions(site.url, SLOW)); // data-open="true": not on a phone, where it would cover the page
    await w(page, '.launcher').waitFor();
    expect(await w(page, '.panel').isHidden()).toBe(true);
    await w(page, '.launcher').click();
    const panel = await w(page, '.panel').boundingBox();
    expect(panel).toEqual({ x: 0, y: 0, width: PHONE.width, height: PHONE.height });
    expect(await w(page, '.launcher').isHidden()).toBe(true);
    expect(await w(page, 'textarea').evaluate((t) => getComputedStyle(t).fontSize)).toBe('16px');
    // the title is whole, not cut with an ellipsis
    expect(await w(page, 'h2').evaluate((h) => h.scrollWidth <= h.clientWidth)).toBe(true);
    for (const selector of ['.close', '.new', 'button[type=submit]']) {
      const box = (await w(page, selector).boundingBox())!;
      expect(Math.min(box.width, box.height), selector).toBeGreaterThanOrEqual(44);
    }
    // Send and Stop swap in place: Stop takes Send's spot, and the input keeps its width
    const send = (await w(page, 'button[type=submit]').boundingBox())!;
    const input = (await w(page, 'textarea').boundingBox())!;
    await ask(page, 'a question on a phone');
    await w(page, 'button:has-text("Stop")').waitFor();
    const stop = (await w(page, 'button:has-text("Stop")').boundingBox())!;
    expect(await w(page, 'button[type=submit]').isHidden()).toBe(true);
    expect(stop.x + stop.width).toBe(send.x + send.width);
    expect(stop.y).toBe(send.y);
    expect((await w(page, 'textarea').boundingBox())!.width).toBe(input.width);
    await finalAnswer(page);
    for (const selector of ['.copy', '.work summary']) {
      expect((await last(page, selector).boundingBox())!.height, selector).toBeGreaterThanOrEqual(44);
    }
    // full screen, the panel is modal: Tab and Shift+Tab cycle inside it
    expect(await w(page, '.panel').getAttribute('aria-modal')).toBe('true');
    await w(page, 'textarea').focus();
    for (const key of [...Array(12).fill('Tab'), ...Array(12).fill('Shift+Tab')]) {
      await page.keyboard.press(key);
      expect(await page.evaluate(() => !!document.querySelector('edgestream-widget')!.shadowRoot!.activeElement), key).toBe(true);
    }
    await w(page, '.close').click();
    expect(await w(page, '.panel').isHidden()).toBe(true);
    expect(await w(page, '.launcher').isVisible()).toBe(true);
    await page.close();
  });

  it('on a desktop the open launcher is the close button, and every target is 44 px', async () => {
    const page = await newPage();
    await page.goto(withOptions(site.url, QUICK, '&open=false'));
    expect(await w(page, '.launcher').getAttribute('aria-label')).toBeNull();
    expect(await w(page, '.launcher').textContent()).toBe('Ask the agent');
    await w(page, '.launcher').click();
    expect(await w(page, '.panel').getAttribute('aria-modal')).toBeNull(); // beside the page, not over it
    expect(await w(page, '.launcher').getAttribute('aria-label')).toBe('Close chat');
    expect(await w(page, '.launcher').textContent()).toBe('');
    for (const selector of ['.launcher', '.close', '.new', 'button[type=submit]']) {
      const box = (await w(page, selector).boundingBox())!;
      expect(Math.min(box.width, box.height), selector).toBeGreaterThanOrEqual(44);
    }
    await w(page, '.launcher').click();
    expect(await w(page, '.panel').isHidden()).toBe(true);
    await page.close();
  });
});

describe('rich text', () => {
  it('renders paragraphs, emphasis, lists, code and safe links, and leaves HTML, script URLs and images inert', async () => {
    const page = await newPage();
    const pixel: string[] = [];
    page.on('request', (r) => r.url().includes('pixel.png') && pixel.push(r.url()));
    await page.goto(withOptions(site.url, {}, '&agent=openai')); // the model agent takes no demo options
    await ask(page, 'show me some markdown');
    const text = await finalAnswer(page);
    expect(text).toBe(renderedText(HOSTILE));
    const a = (selector: string) => last(page, `.answer ${selector}`);
    expect(await a('p').count()).toBeGreaterThanOrEqual(4);
    expect(await a('strong').first().textContent()).toBe('bold');
    expect(await a('em').first().textContent()).toBe('emphasis');
    expect(await a('p code').first().textContent()).toBe('inline <b>code</b>');
    expect(await a('ul li').allTextContents()).toEqual(['first item', 'second item with a safe link']);
    expect(await a('ol li').allTextContents()).toEqual(['one', 'two']);
    expect(await a('pre code').textContent()).toBe('<script>window.pwned = 1</script>');
    expect((await a('table td').allTextContents()).map((c) => c.trim())).toEqual(['1', '2']);
    const safe = a('a:has-text("a safe link")');
    expect(await safe.getAttribute('href')).toBe('https://example.com/docs');
    expect(await safe.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await safe.getAttribute('target')).toBe('_blank');
    // every link that has an href is http(s); the script and data links have none
    const hrefs = await last(page, '.answer').evaluate((el) => [...el.querySelectorAll('a[href]')].map((l) => l.getAttribute('href')));
    expect(hrefs).toEqual(['https://example.com/docs']);
    expect(await a('a:has-text("script link")').getAttribute('href')).toBeNull();
    expect(await a('a:has-text("data link")').getAttribute('href')).toBeNull();
    // raw HTML is text: no element was made from it
    expect(text).toContain('<img src=x onerror="window.pwned = 2">');
    expect(await last(page, '.answer').evaluate((el) => el.querySelectorAll('img, script, iframe, [onerror], [style]').length)).toBe(0);
    // the image is its alt text, never loaded
    expect(await a('.md-img').textContent()).toBe('tracking pixel');
    await a('a:has-text("script link")').click();
    await page.waitForTimeout(200);
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    expect(pixel).toEqual([]);
    await page.close();
  });

  it('copies the answer as written (markdown), and offers "Jump to latest" while scrolled up', async () => {
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.url });
    const page = await newPage();
    await page.goto(withOptions(site.url, { tokens: 1500, delayMs: 10 }));
    const question = 'How do I embed the widget on my site?';
    await ask(page, question);
    await page.waitForFunction(
      () => (document.querySelector('edgestream-widget')?.shadowRoot?.querySelector('.answer')?.textContent?.length ?? 0) > 900,
    );
    expect(await w(page, '.jump').isHidden()).toBe(true); // following the answer
    await w(page, '.body').evaluate((b) => (b.scrollTop = 0));
    await w(page, '.jump').waitFor({ state: 'visible' });
    expect(await w(page, '.jump').textContent()).toBe('Jump to latest');
    await w(page, '.jump').click();
    expect(await w(page, '.body').evaluate((b) => b.scrollHeight - b.scrollTop - b.clientHeight)).toBeLessThan(40);
    await expect.poll(() => w(page, '.jump').isHidden()).toBe(true);
    await finalAnswer(page);
    await last(page, '.copy').click();
    await expect.poll(() => last(page, '.copy').textContent()).toBe('Copied');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(demoText(question, { tokens: 1500, delayMs: 10 }));
    expect(copied).toContain('**One script tag puts this chat on any page:**');
    await page.close();
  });
});

describe('accessibility and looks', () => {
  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    for (const scheme of ['light', 'dark'] as const) {
      it(`the demo page and the widget have no axe violations (${size}, ${scheme})`, async () => {
        const page = await newPage(viewport, scheme);
        await page.goto(`${server.url}/`);
        await w(page, '.launcher').waitFor();
        // The demo page opens the widget beside itself on a wide screen; on a phone it waits for a tap.
        expect(await w(page, '.panel').isVisible()).toBe(size === 'desktop');
        if (size === 'phone') {
          expect((await axe(page)).page).toEqual([]);
          await page.screenshot({ path: join(SHOTS, `product-demo-page-${size}-${scheme}.png`) });
          await w(page, '.launcher').click();
        }
        await ask(page, 'How does an answer survive a dropped connection?');
        await finalAnswer(page);
        await w(page, '.work summary').first().click(); // the plan and steps, unfolded
        const found = await axe(page);
        expect(found.page).toEqual([]);
        expect(found.widget).toEqual([]);
        expect(found.widgetChecked).toBeGreaterThan(10); // the widget's own run checked something
        await w(page, '.body').evaluate((b) => (b.scrollTop = 0));
        await page.screenshot({ path: join(SHOTS, `product-demo-${size}-${scheme}.png`) });
        // The embed on another site, with the panel closed and open.
        const embed = await newPage(viewport, scheme);
        await embed.goto(withOptions(site.url, QUICK, '&open=false&theme=auto'));
        await w(embed, '.launcher').waitFor();
        expect((await axe(embed)).page).toEqual([]);
        await w(embed, '.launcher').click();
        await ask(embed, 'What does it cost?');
        await finalAnswer(embed);
        const open = await axe(embed);
        expect(open.page).toEqual([]);
        expect(open.widget).toEqual([]);
        await embed.screenshot({ path: join(SHOTS, `product-embed-${size}-${scheme}.png`) });
        await embed.close();
        await page.close();
      });
    }
  }

  it("takes the README's picture of the widget (docs/widget.png is a copy of it)", async () => {
    const page = await newPage({ width: 1280, height: 900 });
    await page.goto(`${server.url}/`);
    await ask(page, 'What does it cost?');
    await finalAnswer(page);
    await page.evaluate(() => (document.querySelector('edgestream-widget')!.shadowRoot!.activeElement as HTMLElement | null)?.blur());
    await page.waitForTimeout(300); // the caret and the focus ring are gone
    const panel = (await w(page, '.panel').boundingBox())!;
    const launcher = (await w(page, '.launcher').boundingBox())!;
    const file = join(SHOTS, 'readme-widget.png');
    await page.screenshot({
      path: file,
      clip: { x: panel.x - 12, y: panel.y - 12, width: panel.width + 24, height: launcher.y + launcher.height - panel.y + 24 },
    });
    expect(await w(page, '.answer strong').first().textContent()).toBe('The price is one Durable Object hop and some SQLite writes.');
    await page.close();
  });

  it('serves a favicon', async () => {
    const res = await fetch(`${server.url}/favicon.ico`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\//);
    await res.body?.cancel();
  });
});
