/**
 * What every bench case uses: starting a Worker with wrangler's programmatic
 * runner (inspector off), the workerd processes it owns and their memory,
 * reading SSE bodies, percentiles.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { unstable_startWorker } from 'wrangler';

/**
 * Where Durable Object SQLite files go. On tmpfs by default: locally every
 * commit is an fsync of this machine's disk, which is not what production
 * storage costs (Cloudflare replicates; it does not fsync a local file). The
 * service is also measured once on disk so that cost is visible too.
 */
export const MEMORY_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/**
 * The bench measures what it declares, as the tests do: a copy of the config
 * alone in a temp directory (its siblings linked beside it, so `main` and the
 * assets resolve), so a developer's `.dev.vars` or `.env` beside the real one
 * (an `API_KEYS` there would make every start 401) is never loaded; and
 * nothing from the shell's environment either.
 */
function hermeticConfig(configPath) {
  const from = dirname(configPath);
  const dir = mkdtempSync(join(tmpdir(), 'edgestream-bench-config-'));
  for (const entry of readdirSync(from)) {
    if (entry === basename(configPath)) copyFileSync(configPath, join(dir, entry));
    else if (!entry.startsWith('.dev.vars') && !entry.startsWith('.env')) symlinkSync(join(from, entry), join(dir, entry));
  }
  return join(dir, basename(configPath));
}
process.env.CLOUDFLARE_INCLUDE_PROCESS_ENV = 'false';
process.env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV = 'false';
delete process.env.CLOUDFLARE_ENV;

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** workerd processes this process started (other work on the machine may run its own). */
function workerdPids() {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  return new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, ppid, comm]) => comm === 'workerd' && Number(ppid) === process.pid)
      .map(([pid]) => Number(pid)),
  );
}

/** Resident and peak memory (KiB) of the given processes, summed. */
export function memKiB(pids) {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // process gone
    }
  }
  return { rss, hwm };
}

/**
 * Sample the RSS of `pids` every `everyMs` until stopped; `stop()` returns
 * the highest sample in MiB. VmHWM cannot be reset, so a peak within one
 * phase of a long-lived process is sampled instead.
 */
export function sampleRss(pids, everyMs = 20) {
  let max = memKiB(pids).rss;
  const timer = setInterval(() => {
    max = Math.max(max, memKiB(pids).rss);
  }, everyMs);
  return () => {
    clearInterval(timer);
    return Math.max(max, memKiB(pids).rss) / 1024;
  };
}

/**
 * Start a Worker in this process. `vars` become plain-text bindings (as
 * `[vars]` or `--var` would); `persist` reuses the storage of an earlier one. The workerd processes it started are the new
 * ones, so starts must not overlap.
 */
export async function start(
  name,
  configPath,
  { baseDir = MEMORY_DIR, vars = {}, path = '/v1/runs', persist: reuse, inspector = false } = {},
) {
  const persist = reuse ?? mkdtempSync(join(baseDir, `edgestream-bench-${name}-`));
  const port = await freePort();
  const before = workerdPids();
  const bindings = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, { type: 'plain_text', value: v }]));
  const worker = await unstable_startWorker({
    config: hermeticConfig(configPath),
    bindings,
    dev: {
      remote: false,
      server: { hostname: '127.0.0.1', port },
      inspector,
      persist,
      watch: false,
      liveReload: false,
      logLevel: 'warn',
    },
  });
  await worker.ready;
  const pids = [...workerdPids()].filter((p) => !before.has(p));
  const url = `http://127.0.0.1:${port}`;
  return { name, worker, url, startUrl: `${url}${path}`, persist, pids };
}

/** POST a streamed run to `target.startUrl`; resolves with timing and event count. */
export async function streamRun(target, body, { headers = {}, onFirst, lags = false } = {}) {
  const t0 = performance.now();
  const res = await fetch(target.startUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  return readStream(res, t0, onFirst, { lags });
}

/** How many times `needle` occurs in `text`. */
function count(text, needle) {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * Read an SSE body to its end: when the first event arrived (ms after `t0`),
 * how many events, whether `done` came, the bytes read, and with `lags`
 * each event's delay after its `ts`. Cheap on purpose: with a thousand
 * readers this client shares the machine's two cores with the server.
 */
export async function readStream(res, t0, onFirst, { lags: withLags = false } = {}) {
  let first = null;
  let events = 0;
  let bytes = 0;
  // The last bytes of the previous chunk, so a marker split across chunks still counts once.
  let tail = '';
  let done = false;
  const decoder = new TextDecoder();
  const lags = [];
  for await (const chunk of res.body) {
    const now = Date.now();
    bytes += chunk.byteLength;
    const fresh = decoder.decode(chunk, { stream: true });
    const text = tail.slice(-4) + fresh;
    const n = count(text, '\nid: ') + (events === 0 && text.startsWith('id: ') ? 1 : 0);
    if (n > 0 && first === null) {
      first = performance.now() - t0;
      onFirst?.(first);
    }
    events += n;
    if (withLags) for (const m of text.matchAll(/"ts":(\d+)/g)) lags.push(now - Number(m[1]));
    if (!done && (tail + fresh).includes('event: done')) done = true;
    // Enough to complete a marker split across chunks; ids are counted on its last 4 characters only,
    // too short to hold a whole `\nid: `, so none is counted twice.
    tail = (tail + fresh).slice(-10);
  }
  return {
    first,
    total: performance.now() - t0,
    events,
    bytes,
    done,
    lags,
    requestId: res.headers.get('X-Request-Id'),
    token: res.headers.get('X-Run-Token'),
  };
}

export const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
export const median = (xs) => pct(xs, 50);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
