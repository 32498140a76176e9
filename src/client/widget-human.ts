/**
 * The widget's side of a profile's human check (`humanCheck` on the server):
 * before each start it gets a start ticket from the embedding site's
 * backend, a Turnstile token, or both, as the widget's configuration and
 * the agent's `GET /v1/agents` entry ask.
 *
 * Start tickets (`data-ticket-url`): the contract with the site's backend.
 * - Request: `POST <data-ticket-url>` with `credentials: 'include'` (the
 *   site's cookies go along: the backend knows whose session it is),
 *   `Content-Type: application/json`, `Accept: application/json` and the
 *   body `{"agent":"<data-agent>"}`, or `{}` without data-agent (the
 *   deployment's default profile). One request before every start,
 *   including each Retry; the answer is never cached or stored.
 * - Answer: `200` with JSON `{"ticket":"v1.<payload>.<sig>"}`, signed for
 *   that profile with the deployment's TICKET_SECRET (src/human/ticket.ts's
 *   `signTicket`, or scripts/make-ticket.mjs; a short `exp`, e.g. 300 s).
 *   Anything else (another status, no JSON, no `ticket` string, no answer
 *   within TICKET_TIMEOUT_MS) is shown as an error with Retry, and no run
 *   starts. Refuse with 401/403 when there is no session.
 * - Same origin as the page needs nothing more. On another origin the
 *   backend must answer the CORS preflight (the JSON content type makes
 *   one) with `Access-Control-Allow-Origin: <the page's origin>` (never `*`)
 *   and `Access-Control-Allow-Credentials: true`.
 *
 * Turnstile: used when `data-turnstile-sitekey` is set, or, without it and
 * without data-ticket-url, when the agent's `/v1/agents` entry gives a
 * `turnstileSiteKey` (its humanCheck is `turnstile` or `either`). The
 * script is loaded once, explicitly rendered (`?render=explicit`,
 * `turnstile.render`), and the widget lives in the light DOM, in the host's
 * `turnstile` slot: Cloudflare's docs ("Embed the widget") render into a
 * container element of the page and say nothing of shadow roots, and
 * Turnstile puts its own iframe in a shadow tree of that container, so the
 * container stays out of ours. Tokens are
 * single-use: the widget is reset as soon as one is taken, so the next
 * question's token is being made while this one's run starts.
 */
import type { RunOptions } from './run';

export type Evidence = Pick<RunOptions, 'ticket' | 'turnstileToken'>;

/** Explicit rendering: the script renders nothing by itself; we call `turnstile.render`. */
export const TURNSTILE_SCRIPT = 'https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit';
/** A ticket endpoint silent this long will not answer: say so and offer Retry. */
export const TICKET_TIMEOUT_MS = 10_000;

/** The part of Cloudflare's `window.turnstile` the widget uses. */
interface Turnstile {
  render(container: HTMLElement, params: Record<string, unknown>): string | null | undefined;
  reset(id: string): void;
  getResponse(id: string): string | undefined;
}

export interface HumanConfig {
  endpoint: string;
  agent: string | undefined;
  ticketUrl: string | undefined;
  turnstileSiteKey: string | undefined;
  theme: string;
}

const COULD_NOT = 'This site could not confirm you are human';

/**
 * @param host the widget's shadow host: the Turnstile container is appended to it (light DOM, slotted)
 */
export function humanCheck(config: HumanConfig, host: HTMLElement) {
  let siteKey: Promise<string | undefined> | null = null;
  let widget: Promise<{ ts: Turnstile; id: string }> | null = null;
  let waiter: { resolve: (token: string) => void; reject: (err: Error) => void } | null = null;

  /** The Turnstile site key this widget must use, if any (asked of /v1/agents once per page). */
  const keyOf = () =>
    (siteKey ??=
      config.turnstileSiteKey || config.ticketUrl
        ? Promise.resolve(config.turnstileSiteKey)
        : fetch(new URL('/v1/agents', config.endpoint))
            .then((res) => res.json())
            .then((body: { agents?: { name: string; default?: boolean; turnstileSiteKey?: string }[] }) => {
              const entry = body.agents?.find((a) => (config.agent ? a.name === config.agent : a.default));
              return entry?.turnstileSiteKey;
            })
            .catch(() => {
              siteKey = null; // ask again next time; the server says what it needs if it refuses
              return undefined;
            }));

  const load = (sitekey: string) =>
    (widget ??= new Promise<Turnstile>((resolve, reject) => {
      const w = window as { turnstile?: Turnstile };
      if (w.turnstile) return resolve(w.turnstile); // the page loaded it already
      const script = document.createElement('script');
      script.src = TURNSTILE_SCRIPT;
      script.async = true;
      script.onload = () => (w.turnstile ? resolve(w.turnstile) : reject());
      script.onerror = reject;
      document.head.append(script);
    })
      .then((ts) => {
        const box = document.createElement('div');
        box.slot = 'turnstile';
        host.append(box);
        const id = ts.render(box, {
          sitekey,
          theme: config.theme,
          // Shown only when Turnstile needs the visitor to click.
          appearance: 'interaction-only',
          callback: (token: string) => waiter?.resolve(token),
          'error-callback': (code: string) => {
            waiter?.reject(new Error(`${COULD_NOT} (Turnstile error ${code}).`));
            return true; // handled: Turnstile retries by itself
          },
        });
        if (!id) throw new Error('not rendered');
        return { ts, id };
      })
      .catch(() => {
        widget = null;
        throw new Error(`${COULD_NOT}: its check (Turnstile) did not load.`);
      }));

  const token = async (sitekey: string): Promise<string> => {
    const { ts, id } = await load(sitekey);
    try {
      return ts.getResponse(id) || (await new Promise<string>((resolve, reject) => (waiter = { resolve, reject })));
    } finally {
      waiter = null;
      ts.reset(id); // single-use: start making the next question's token now
    }
  };

  const ticket = async (url: string): Promise<string> => {
    let status = 'no answer';
    try {
      const res = await fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ agent: config.agent }),
        signal: AbortSignal.timeout(TICKET_TIMEOUT_MS),
      });
      status = `HTTP ${res.status}`;
      const body = (await res.json()) as { ticket?: unknown };
      if (res.ok && typeof body?.ticket === 'string' && body.ticket) return body.ticket;
    } catch {
      // no answer, or not JSON: said below
    }
    throw new Error(`${COULD_NOT} (${status}).`);
  };

  return {
    /** Get ready early (load and render Turnstile), so a token is likely waiting when the question comes. */
    prepare(): void {
      void keyOf()
        .then((key) => (key ? load(key) : undefined))
        .catch(() => {}); // evidence() says what went wrong, when it matters
    },
    /** The evidence for one start: a fresh ticket and/or Turnstile token. Rejects with a message for a person. */
    async evidence(): Promise<Evidence> {
      const [key, t] = await Promise.all([keyOf(), config.ticketUrl ? ticket(config.ticketUrl) : undefined]);
      return { ticket: t, turnstileToken: key ? await token(key) : undefined };
    },
  };
}
