#!/usr/bin/env node
// `npm run dev`: build the static client, then wrangler dev on 127.0.0.1:8787,
// quiet and offline (no metrics, no Request.cf fetch, no banner).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
};
const port = process.env.PORT ?? '8787';
if (existsSync('scripts/build-client.mjs')) {
  await new Promise((resolve, reject) =>
    spawn(process.execPath, ['scripts/build-client.mjs'], { stdio: 'inherit' }).on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`client build failed (${code})`)),
    ),
  );
}
const child = spawn(
  'wrangler',
  ['dev', '--ip', '127.0.0.1', '--port', port, '--inspector-port', '0', '--show-interactive-dev-session=false', ...process.argv.slice(2)],
  { stdio: 'inherit', env },
);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
