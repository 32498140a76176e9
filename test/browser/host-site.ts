/**
 * "Somebody else's website": a page on another origin that embeds the widget
 * with one script tag, plus the React demo app bundled on the fly.
 */
import { build } from 'esbuild';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../support/dev-server';

export interface HostSite {
  url: string;
  close: () => Promise<void>;
}

export async function startHostSite(endpoint: string, widgetAttrs: Record<string, string> = {}): Promise<HostSite> {
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
  const server = createServer((req, res) => {
    if (req.url === '/react') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><title>react</title><div id="root"></div><script>window.ENDPOINT=${JSON.stringify(endpoint)}</script><script src="/react.js"></script>`);
    } else if (req.url === '/react.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(reactJs);
    } else {
      // `/fail` embeds a widget whose demo runs fail after 3 deltas; `?options=JSON`
      // overrides data-options and `?open=false` leaves the panel closed on load.
      const url = new URL(req.url ?? '/', 'http://host');
      const extra: Record<string, string> = {};
      if (url.pathname === '/fail') extra['data-options'] = JSON.stringify({ tokens: 20, delayMs: 5, failAfter: 3 });
      if (url.searchParams.has('options')) extra['data-options'] = url.searchParams.get('options')!;
      if (url.searchParams.get('open') === 'false') extra['data-open'] = 'false';
      const attrs = attrsOf(extra);
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><html><head><title>Someone's blog</title>
<style>body{font-family:Georgia,serif;margin:40px;background:#fafafa} .launcher{color:red!important} button{background:lime}</style></head>
<body><h1>A page on another origin</h1><p>The widget below comes from ${endpoint}.</p>
<script src="${endpoint}/widget.js" ${attrs} async></script></body></html>`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
