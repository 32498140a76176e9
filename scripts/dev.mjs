#!/usr/bin/env node
// `npm run dev`: wrangler dev on 127.0.0.1:8787 (its [build] bundles the client),
// quiet and offline (no metrics, no Request.cf fetch, no banner).
import { spawn } from 'node:child_process';

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
};
const port = process.env.PORT ?? '8787';
// wrangler.toml's [build] bundles the static client before serving.
const child = spawn(
  'wrangler',
  ['dev', '--ip', '127.0.0.1', '--port', port, '--inspector-port', '0', '--show-interactive-dev-session=false', ...process.argv.slice(2)],
  { stdio: 'inherit', env },
);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
