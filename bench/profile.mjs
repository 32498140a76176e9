#!/usr/bin/env node
/**
 * `node bench/profile.mjs [ttfe|concurrent|readers] [n] [--floor]`: a CPU profile of
 * the service's isolate (the Worker and its Durable Objects run in one
 * locally) while it serves a bench case, taken over the inspector protocol.
 * Prints the functions with the most self time and writes
 * bench/out/<case>.cpuprofile (open it in Chrome DevTools). Only the
 * Profiler domain is enabled: the Network domain, which taxes DO streams,
 * stays off. Figures are for finding where time goes, not for comparing.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { concurrent, readers, ttfe } from './cases.mjs';
import { start } from './lib.mjs';

const ROOT = resolve(import.meta.dirname, '..');
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.WRANGLER_SEND_ERROR_REPORTS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
process.env.WRANGLER_HIDE_BANNER = 'true';
const CASE = process.argv[2] ?? 'ttfe';
const N = Number(process.argv.slice(3).find((a) => /^\d+$/.test(a)) ?? 200);
const KEY = 'bench-api-key-0123456789';

async function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** A minimal CDP client over the inspector's WebSocket. */
async function inspect(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.title?.includes('edgestream') || t.id?.includes('edgestream')) ?? targets[0];
  // The inspector proxy wants a local Origin.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: 'http://localhost' } });
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  };
  const send = (method, params = {}) =>
    new Promise((r) => {
      const n = ++id;
      pending.set(n, r);
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return { send, close: () => ws.close(), title: target.title };
}

function topSelf(profile, count = 30) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}`)
    .join('\n');
}

const inspectorPort = await freePort();
const vars = CASE === 'readers' ? { API_KEYS: KEY } : {};
// `--floor`: the floor instead of the service, to see what the hop alone costs.
const FLOOR = process.argv.includes('--floor');
const config = FLOOR ? join(ROOT, 'bench', 'floor-wrangler.toml') : join(ROOT, 'wrangler.toml');
const target = await start('profile', config, {
  vars,
  path: FLOOR ? '/?hop=rpc' : '/v1/runs',
  inspector: { hostname: '127.0.0.1', port: inspectorPort },
});
try {
  if (CASE !== 'readers') await ttfe(target, 20);
  const cdp = await inspect(inspectorPort);
  console.error(`profiling ${cdp.title}: ${CASE} x ${N}`);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  const t0 = performance.now();
  if (CASE === 'ttfe') await ttfe(target, N);
  else if (CASE === 'concurrent') await concurrent(target);
  else if (CASE === 'readers') await readers(target, N, KEY, 0);
  const wall = performance.now() - t0;
  const { result } = await cdp.send('Profiler.stop');
  cdp.close();
  writeFileSync(join(ROOT, 'bench', 'out', `${CASE}.cpuprofile`), JSON.stringify(result.profile));
  console.log(`${CASE} x ${N}: ${wall.toFixed(0)} ms wall`);
  console.log(topSelf(result.profile));
} finally {
  await target.worker.dispose();
}
process.exit(0);
