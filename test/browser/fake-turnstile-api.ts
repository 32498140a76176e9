/**
 * A stand-in for Cloudflare's Turnstile client script
 * (`https://challenges.cloudflare.com/turnstile/v0/api.js`), which these
 * tests cannot reach: playwright's `page.route` serves it instead, and its
 * tokens are ones test/support/fake-turnstile.ts (the fake siteverify)
 * accepts, minted in Node through an exposed function.
 *
 * What it mimics of the real API (Cloudflare's "Embed the widget" and
 * "Client-side errors" pages):
 * - `?render=explicit`: nothing renders by itself (this fake never scans
 *   for `.cf-turnstile` at all); `?onload=NAME` calls `window[NAME]()` once loaded.
 * - `turnstile.render(container, params)`: container is an element or a
 *   selector; `params.sitekey` is required (the real one throws without it);
 *   returns a widget id. The widget appends its frame and a hidden
 *   `<input name="cf-turnstile-response">` to the container, runs a
 *   challenge (CHALLENGE_MS here), then calls `params.callback(token)` and
 *   puts the token in the input.
 * - A failing challenge calls `params['error-callback'](code)` instead
 *   (set `window.__fakeTurnstileFail = '<code>'` to make challenges fail).
 * - `turnstile.getResponse(id)`: the current token, or undefined before a
 *   challenge is solved; `reset(id)`: forgets the token and runs a new
 *   challenge (a new token follows); `remove(id)`: takes the widget away.
 *   An id left out means the last rendered widget, as in the real API.
 *
 * Not mimicked: appearance/size/theme (recorded, not acted on), expiry
 * after 300 s and `expired-callback`, `execute`, `ready`, interactive
 * challenges. One rule is this fake's own: a container inside a shadow
 * root is refused (render throws), so a test fails if the widget ever
 * puts Turnstile where the real one is not documented to work.
 */
import type { Page, Route } from 'playwright-core';

export const TURNSTILE_API_GLOB = 'https://challenges.cloudflare.com/turnstile/v0/api.js*';
/** How long the fake challenge "runs" before its callback. */
const CHALLENGE_MS = 100;

export interface FakeTurnstileApi {
  /** URLs the page loaded api.js from, in order. */
  loads: string[];
  /** Tokens handed to the page, in order. */
  minted: string[];
  /** What the page passed to render() and how often it reset, as the page recorded it. */
  calls: () => Promise<{ renders: { sitekey: string; theme?: string; appearance?: string; container: string }[]; resets: number }>;
}

const SCRIPT = `(() => {
  const mint = window.__fakeTurnstileMint;
  const log = (window.__fakeTurnstile = { renders: [], resets: 0 });
  const widgets = new Map();
  let count = 0;
  let last;
  const challenge = (w) => {
    w.token = undefined;
    w.input.value = '';
    const attempt = (w.attempt = {});
    setTimeout(async () => {
      const failure = window.__fakeTurnstileFail;
      const token = failure ? undefined : await mint();
      if (w.attempt !== attempt || !widgets.has(w.id)) return; // reset or removed meanwhile
      if (failure) {
        if (!w.params['error-callback']?.(failure)) console.warn('[Cloudflare Turnstile] Error: ' + failure);
        return;
      }
      w.token = token;
      w.input.value = token;
      w.frame.dataset.state = 'solved';
      w.params.callback?.(token);
    }, ${CHALLENGE_MS});
  };
  const widget = (id) => widgets.get(id ?? last);
  window.turnstile = {
    render(container, params = {}) {
      const node = typeof container === 'string' ? document.querySelector(container) : container;
      if (!node) throw new Error('[Cloudflare Turnstile] Unable to find a container for "' + container + '".');
      if (typeof params.sitekey !== 'string' || !params.sitekey) throw new Error('[Cloudflare Turnstile] Invalid or missing type for parameter "sitekey", expected "string", got "' + typeof params.sitekey + '".');
      if (node.getRootNode() !== document) throw new Error('fake Turnstile: the container is not in the document (a shadow root?)');
      const id = 'cf-chl-widget-' + (++count).toString(36);
      const frame = document.createElement('div');
      frame.className = 'fake-turnstile-frame';
      frame.id = id;
      frame.textContent = 'Verifying you are human (fake Turnstile)';
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = 'cf-turnstile-response';
      input.id = id + '_response';
      node.append(frame, input);
      const w = { id, params, frame, input };
      widgets.set(id, w);
      last = id;
      log.renders.push({ sitekey: params.sitekey, theme: params.theme, appearance: params.appearance, container: node.parentNode === document.querySelector('edgestream-widget') ? 'widget host (light DOM)' : node.tagName });
      challenge(w);
      return id;
    },
    reset(id) {
      const w = widget(id);
      if (!w) return;
      log.resets++;
      challenge(w);
    },
    getResponse(id) {
      return widget(id)?.token;
    },
    remove(id) {
      const w = widget(id);
      if (!w) return;
      w.frame.remove();
      w.input.remove();
      widgets.delete(w.id);
    },
  };
  const onload = new URL(document.currentScript.src).searchParams.get('onload');
  if (onload && typeof window[onload] === 'function') window[onload]();
})();`;

/**
 * Serve the fake api.js to `page` and mint its tokens with `mint` (e.g. the
 * fake siteverify's `goodToken`). Call before the page loads the widget.
 */
export async function installFakeTurnstile(page: Page, mint: () => string): Promise<FakeTurnstileApi> {
  const api: FakeTurnstileApi = {
    loads: [],
    minted: [],
    calls: () =>
      page.evaluate(() => (window as unknown as { __fakeTurnstile: Awaited<ReturnType<FakeTurnstileApi['calls']>> }).__fakeTurnstile),
  };
  await page.exposeFunction('__fakeTurnstileMint', () => {
    const token = mint();
    api.minted.push(token);
    return token;
  });
  await page.route(TURNSTILE_API_GLOB, (route: Route) => {
    api.loads.push(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/javascript', body: SCRIPT });
  });
  return api;
}
