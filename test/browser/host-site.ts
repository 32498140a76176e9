/**
 * "Somebody else's website": a page on another origin that embeds the widget
 * with one script tag, plus the React demo app bundled on the fly, plus the
 * site's own start-ticket endpoint (`POST /edgestream-ticket`), as a site's
 * backend would serve it for `data-ticket-url`.
 */
import { build } from 'esbuild';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { signTicket } from '../../src/human/ticket';
import { ROOT } from '../support/dev-server';

/** The cookie the ticket endpoint takes for a signed-in visitor. */
export const SESSION_COOKIE = 'site_session';
/** How long its tickets live: a page view's worth, as scripts/make-ticket.mjs defaults to. */
const TICKET_TTL_S = 300;

/**
 * The site's ticket endpoint, as the widget's contract (src/client/widget-human.ts)
 * has it: POST with the site's cookies, JSON `{agent?}` in, `{ticket}` out.
 */
export interface TicketEndpoint {
  /** TICKET_SECRET, shared with the deployment. */
  secret: string;
  /** The profile a body without `agent` means (the deployment's default). */
  defaultProfile: string;
  /** `ok` signs; `fail` answers 503; `wrong-secret` signs with another secret (the service refuses it). */
  mode: 'ok' | 'fail' | 'wrong-secret';
  /** Every request, in order, and the ticket it got (if any). */
  requests: { method: string; cookie: string | undefined; contentType: string | undefined; body: string; ticket?: string }[];
}

export interface HostSite {
  url: string;
  /** Set `ticket.mode` to make the endpoint misbehave. Absent without `startHostSite`'s `ticket`. */
  ticket?: TicketEndpoint;
  close: () => Promise<void>;
}

export async function startHostSite(
  endpoint: string,
  widgetAttrs: Record<string, string> = {},
  options: { ticket?: Pick<TicketEndpoint, 'secret' | 'defaultProfile'> } = {},
): Promise<HostSite> {
  const ticket: TicketEndpoint | undefined = options.ticket && { ...options.ticket, mode: 'ok', requests: [] };
  const react = await build({
    entryPoints: [join(ROOT, 'test/browser/react-app.tsx')],
    bundle: true,
    write: false,
    format: 'iife',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  const reactJs = react.outputFiles[0]!.text;
  const attrsOf = (extra: Record<string, string>) =>
    Object.entries({ 'data-endpoint': endpoint, 'data-open': 'true', ...widgetAttrs, ...extra })
      .map(([k, v]) => `${k}='${v}'`)
      .join(' ');
  const server = createServer(async (req, res) => {
    if (req.url === '/edgestream-ticket' && ticket) {
      let body = '';
      for await (const chunk of req) body += chunk;
      const seen: TicketEndpoint['requests'][number] = {
        method: req.method ?? '',
        cookie: req.headers.cookie,
        contentType: req.headers['content-type'],
        body,
      };
      ticket.requests.push(seen);
      const send = (status: number, json: object) =>
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(json));
      if (req.method !== 'POST') return send(405, { error: 'POST only' });
      if (ticket.mode === 'fail') return send(503, { error: 'ticket service down' });
      // A real backend vouches only for a visitor it knows: here, one with a session cookie.
      const session = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([\\w-]+)`).exec(req.headers.cookie ?? '')?.[1];
      if (!session) return send(401, { error: 'not signed in' });
      let agent: unknown;
      try {
        agent = JSON.parse(body).agent;
      } catch {
        return send(400, { error: 'send JSON' });
      }
      const profile = typeof agent === 'string' ? agent : ticket.defaultProfile;
      const secret = ticket.mode === 'wrong-secret' ? `${ticket.secret}-not-it` : ticket.secret;
      seen.ticket = await signTicket({ profile, expiresAt: Math.floor(Date.now() / 1000) + TICKET_TTL_S, sub: `user-${session}` }, secret);
      return send(200, { ticket: seen.ticket });
    }
    if (req.url === '/react') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(
        `<!doctype html><title>react</title><div id="root"></div><script>window.ENDPOINT=${JSON.stringify(endpoint)}</script><script src="/react.js"></script>`,
      );
    } else if (req.url === '/react.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(reactJs);
    } else {
      // `/fail` embeds a widget whose demo runs fail after 3 deltas; `?options=JSON`
      // overrides data-options and `?open=false` leaves the panel closed on load;
      // `?agent=NAME` sets data-agent, `?ticket` points data-ticket-url at this
      // site's ticket endpoint, `?sitekey=KEY` sets data-turnstile-sitekey, `?theme=` data-theme.
      const url = new URL(req.url ?? '/', 'http://host');
      const extra: Record<string, string> = {};
      if (url.pathname === '/fail') extra['data-options'] = JSON.stringify({ tokens: 20, delayMs: 5, failAfter: 3 });
      if (url.searchParams.has('options')) extra['data-options'] = url.searchParams.get('options')!;
      if (url.searchParams.get('open') === 'false') extra['data-open'] = 'false';
      if (url.searchParams.has('agent')) extra['data-agent'] = url.searchParams.get('agent')!;
      if (url.searchParams.has('ticket')) extra['data-ticket-url'] = `http://${req.headers.host}/edgestream-ticket`;
      if (url.searchParams.has('sitekey')) extra['data-turnstile-sitekey'] = url.searchParams.get('sitekey')!;
      if (url.searchParams.has('theme')) extra['data-theme'] = url.searchParams.get('theme')!;
      const attrs = attrsOf(extra);
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Someone's blog</title>
<style>body{font-family:Georgia,serif;margin:40px;background:#fafafa;color:#222} .launcher{color:red!important} button{background:lime}</style></head>
<body><main><h1>A page on another origin</h1><p>The widget below comes from ${endpoint}.</p></main>
<script src="${endpoint}/widget.js" ${attrs} async></script></body></html>`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    ...(ticket ? { ticket } : {}),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
