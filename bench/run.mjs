#!/usr/bin/env node
/**
 * `npm run bench`: the service against a bare Worker streaming the same events
 * (bench/bare-worker.ts), both started the same way in this process with
 * wrangler's programmatic runner and the inspector OFF (wrangler dev's
 * inspector copies every DO stream chunk; see ../shared/NOTES.md).
 * Prints figures, ratios to the baseline and PASS/MISS against the targets;
 * writes bench/out/results.json. Machines are noisy: compare within one run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { performance } from 'node:perf_hooks';
import { unstable_startWorker } from 'wrangler';

const ROOT = resolve(import.meta.dirname, '..');
const QUICK = process.argv.includes('--quick');
const N_TTFE = QUICK ? 40 : 200;
const N_CONCURRENT = 200;
const EVENTS_PER_CONCURRENT = 500;
const N_RESUME = QUICK ? 10 : 30;
/** Events in a demo run besides the deltas: run, 6 stage events, result, done. */
const OVERHEAD_EVENTS = 9;

process.env.WRANGLER_SEND_METRICS = 'false';
process.env.WRANGLER_SEND_ERROR_REPORTS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
process.env.WRANGLER_HIDE_BANNER = 'true';

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

function workerdPids() {
  const out = execFileSync('ps', ['-eo', 'pid=,comm='], { encoding: 'utf8' });
  return new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, comm]) => comm === 'workerd')
      .map(([pid]) => Number(pid)),
  );
}

function memKiB(pids) {
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
 * Where Durable Object SQLite files go. On tmpfs by default: locally every
 * commit is an fsync of this machine's disk, which is not what production
 * storage costs (Cloudflare replicates; it does not fsync a local file). The
 * service is also measured once on disk so that cost is visible too.
 */
const MEMORY_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

async function start(name, configPath, baseDir = MEMORY_DIR) {
  const persist = mkdtempSync(join(baseDir, `edgestream-bench-${name}-`));
  const port = await freePort();
  const before = workerdPids();
  const worker = await unstable_startWorker({
    config: configPath,
    dev: {
      remote: false,
      server: { hostname: '127.0.0.1', port },
      inspector: false,
      persist,
      watch: false,
      liveReload: false,
      logLevel: 'warn',
    },
  });
  await worker.ready;
  const pids = [...workerdPids()].filter((p) => !before.has(p));
  return { name, worker, url: `http://127.0.0.1:${port}`, persist, pids };
}

/** POST a streamed run; resolves with timing and event count. */
async function streamRun(url, body, onFirst) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return readStream(res, t0, onFirst);
}

async function readStream(res, t0, onFirst) {
  let first = null;
  let events = 0;
  let tail = '';
  let done = false;
  const decoder = new TextDecoder();
  const lags = [];
  for await (const chunk of res.body) {
    const now = Date.now();
    const received = tail + decoder.decode(chunk, { stream: true });
    // Scan complete lines only; keep a partial last line for the next chunk.
    const cut = received.lastIndexOf('\n');
    const text = received.slice(0, cut + 1);
    tail = received.slice(cut + 1);
    const matches = text.match(/^id: /gm);
    if (matches) {
      if (first === null) {
        first = performance.now() - t0;
        onFirst?.(first);
      }
      events += matches.length;
    }
    for (const m of text.matchAll(/"ts":(\d+)/g)) lags.push(now - Number(m[1]));
    if (text.includes('event: done')) done = true;
  }
  return {
    first,
    total: performance.now() - t0,
    events,
    done,
    lags,
    requestId: res.headers.get('X-Request-Id'),
    token: res.headers.get('X-Run-Token'),
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs) => pct(xs, 50);
const fmt = (n, d = 1) => (n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d));

/** Requests before measuring: the first ones pay for compiling the Worker. */
const WARMUP = 20;

async function ttfe(target) {
  for (let i = 0; i < WARMUP; i++) await streamRun(target.url, { query: `warmup ${i}`, options: { tokens: 1, delayMs: 0 } });
  const times = [];
  for (let i = 0; i < N_TTFE; i++) {
    const r = await streamRun(target.url, { query: `ttfe ${i}`, options: { tokens: 1, delayMs: 0 } });
    times.push(r.first);
  }
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

async function throughput(target) {
  const rates = [];
  for (let i = 0; i < 3; i++) {
    const r = await streamRun(target.url, { query: `throughput ${i}`, options: { tokens: 10_000, delayMs: 0 } });
    if (!r.done || r.events !== 10_000 + OVERHEAD_EVENTS) throw new Error(`incomplete stream: ${r.events}`);
    rates.push(r.events / (r.total / 1000));
  }
  return { eventsPerSec: median(rates) };
}

async function concurrent(target) {
  const before = memKiB(target.pids);
  const t0 = performance.now();
  let errors = 0;
  let events = 0;
  const tokens = EVENTS_PER_CONCURRENT - OVERHEAD_EVENTS;
  const results = await Promise.allSettled(
    Array.from({ length: N_CONCURRENT }, (_, i) => streamRun(target.url, { query: `concurrent ${i}`, options: { tokens, delayMs: 0 } })),
  );
  const reasons = {};
  for (const r of results) {
    const reason =
      r.status === 'rejected'
        ? String(r.reason?.cause?.code ?? r.reason?.message ?? r.reason)
        : !r.value.done || r.value.events !== EVENTS_PER_CONCURRENT
          ? `incomplete stream (${r.value.events} events)`
          : null;
    if (reason) {
      errors++;
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    }
    if (r.status === 'fulfilled') events += r.value.events;
  }
  if (errors) console.error(`[${target.name}] errors:`, reasons);
  const wall = (performance.now() - t0) / 1000;
  const after = memKiB(target.pids);
  return {
    eventsPerSec: events / wall,
    errors,
    reasons,
    rssBeforeMiB: before.rss / 1024,
    rssAfterMiB: after.rss / 1024,
    peakMiB: after.hwm / 1024,
  };
}

/** Time from a reconnect (GET with Last-Event-ID) to its first replayed event. */
async function resume(target) {
  const during = [];
  const after = [];
  for (let i = 0; i < N_RESUME; i++) {
    // during: a live run is still producing; the reader comes back at seq 50
    const live = await streamRunUntil(target.url, { query: `resume live ${i}`, options: { tokens: 400, delayMs: 5 } }, 60);
    during.push(await timeFirstReplayed(target.url, live, 50));
    // after: the run has completed; the reader comes back at seq 50
    const ended = await streamRun(target.url, { query: `resume ended ${i}`, options: { tokens: 400, delayMs: 0 } });
    after.push(await timeFirstReplayed(target.url, ended, 50));
  }
  return { duringP50: median(during), duringP99: pct(during, 99), afterP50: median(after), afterP99: pct(after, 99) };
}

async function streamRunUntil(url, body, count) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  const ids = { requestId: res.headers.get('X-Request-Id'), token: res.headers.get('X-Run-Token') };
  let seen = 0;
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      seen += (decoder.decode(chunk, { stream: true }).match(/^id: /gm) ?? []).length;
      if (seen >= count) break;
    }
  } finally {
    ac.abort();
  }
  return ids;
}

async function timeFirstReplayed(url, { requestId, token }, lastEventId) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/runs/${requestId}/events`, {
    headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': String(lastEventId) },
  });
  let first = null;
  const r = await readStream(res, t0, (t) => (first = t));
  if (!r.done) throw new Error('resumed stream did not reach done');
  return first;
}

/** Delay between an event's `ts` (when it was produced) and its arrival, paced like a model. */
async function pacedLag(target) {
  const r = await streamRun(target.url, { query: 'paced', options: { tokens: 200, delayMs: 30 } });
  return { p50: median(r.lags), p99: pct(r.lags, 99) };
}

/** SQLite rows written per 1,000 delta events, read from the DO databases on disk. */
function rowsPer1000(persist) {
  const dir = join(persist, 'v3', 'do');
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.sqlite')) files.push(join(d, e.name));
    }
  };
  walk(dir);
  const byPace = {};
  for (const file of files) {
    let db;
    try {
      db = new DatabaseSync(file, { readOnly: true });
      const run = db.prepare('SELECT input FROM run').get();
      if (!run) continue;
      const { options } = JSON.parse(run.input);
      const key = `delayMs ${options.delayMs}, tokens ${options.tokens}`;
      const { rows, events } = db.prepare('SELECT count(*) AS rows, sum(last_seq - first_seq + 1) AS events FROM events').get();
      const agg = (byPace[key] ??= { runs: 0, eventRows: 0, runRows: 0, deltas: 0, events: 0 });
      agg.runs++;
      agg.eventRows += rows;
      agg.runRows += 2; // the run row: inserted at start, updated at the end
      agg.deltas += options.tokens;
      agg.events += events;
    } catch {
      // a database still being written, or not ours
    } finally {
      db?.close();
    }
  }
  const out = {};
  for (const [key, a] of Object.entries(byPace)) {
    out[key] = { runs: a.runs, rowsPer1000Deltas: ((a.eventRows + a.runRows) / a.deltas) * 1000, eventsPerRow: a.events / a.eventRows };
  }
  return out;
}

async function measure(target, { withResume }) {
  console.error(`[${target.name}] time to first event...`);
  const t = await ttfe(target);
  console.error(`[${target.name}] single-stream throughput...`);
  const tp = await throughput(target);
  console.error(`[${target.name}] ${N_CONCURRENT} concurrent streams...`);
  const cc = await concurrent(target);
  console.error(`[${target.name}] paced delivery delay...`);
  const lag = await pacedLag(target);
  let rs = null;
  if (withResume) {
    console.error(`[${target.name}] resume...`);
    rs = await resume(target);
  }
  return { ttfe: t, throughput: tp, concurrent: cc, lag, resume: rs };
}

async function main() {
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  const results = { runner: `wrangler unstable_startWorker, inspector off, local workerd, DO storage in ${MEMORY_DIR}`, quick: QUICK };
  for (const [name, config, withResume] of [
    ['bare', join(ROOT, 'bench', 'bare-wrangler.toml'), false],
    ['service', join(ROOT, 'wrangler.toml'), true],
  ]) {
    const target = await start(name, config);
    try {
      results[name] = await measure(target, { withResume });
      if (name === 'service') {
        await new Promise((r) => setTimeout(r, 500));
        results.service.rows = rowsPer1000(target.persist);
      }
    } finally {
      await target.worker.dispose();
      rmSync(target.persist, { recursive: true, force: true });
    }
  }
  // Time to first event with SQLite files on this machine's disk.
  const disk = await start('service-disk', join(ROOT, 'wrangler.toml'), tmpdir());
  try {
    console.error('[service, persist on disk] time to first event...');
    results.serviceOnDisk = { ttfe: await ttfe(disk) };
  } finally {
    await disk.worker.dispose();
    rmSync(disk.persist, { recursive: true, force: true });
  }
  report(results);
  writeFileSync(join(ROOT, 'bench', 'out', 'results.json'), JSON.stringify(results, null, 2));
}

function report(r) {
  const s = r.service;
  const b = r.bare;
  const ratio = (x, y) => (y ? x / y : NaN);
  const rows = Object.entries(s.rows);
  const fast = s.rows['delayMs 0, tokens 10000'];
  const lines = [
    `edgestream bench (${r.runner}${r.quick ? ', --quick' : ''})`,
    '',
    'metric                                   service      bare   ratio',
    `time to first event p50 (ms)          ${fmt(s.ttfe.p50, 2).padStart(10)} ${fmt(b.ttfe.p50, 2).padStart(9)} ${fmt(ratio(s.ttfe.p50, b.ttfe.p50), 2).padStart(7)}x`,
    `time to first event p99 (ms)          ${fmt(s.ttfe.p99, 2).padStart(10)} ${fmt(b.ttfe.p99, 2).padStart(9)} ${fmt(ratio(s.ttfe.p99, b.ttfe.p99), 2).padStart(7)}x`,
    `  same, DO storage on disk p50/p99    ${`${fmt(r.serviceOnDisk.ttfe.p50, 2)}/${fmt(r.serviceOnDisk.ttfe.p99, 2)}`.padStart(10)} ${''.padStart(9)} ${fmt(ratio(r.serviceOnDisk.ttfe.p50, b.ttfe.p50), 2).padStart(7)}x`,
    `single stream, 10k events (events/s)  ${fmt(s.throughput.eventsPerSec, 0).padStart(10)} ${fmt(b.throughput.eventsPerSec, 0).padStart(9)} ${fmt(ratio(s.throughput.eventsPerSec, b.throughput.eventsPerSec), 2).padStart(7)}x`,
    `${N_CONCURRENT} streams x ${EVENTS_PER_CONCURRENT} events (events/s)   ${fmt(s.concurrent.eventsPerSec, 0).padStart(10)} ${fmt(b.concurrent.eventsPerSec, 0).padStart(9)} ${fmt(ratio(s.concurrent.eventsPerSec, b.concurrent.eventsPerSec), 2).padStart(7)}x`,
    `  errors                              ${String(s.concurrent.errors).padStart(10)} ${String(b.concurrent.errors).padStart(9)}`,
    `  workerd RSS after (MiB)             ${fmt(s.concurrent.rssAfterMiB, 0).padStart(10)} ${fmt(b.concurrent.rssAfterMiB, 0).padStart(9)}`,
    `  workerd peak RSS (MiB)              ${fmt(s.concurrent.peakMiB, 0).padStart(10)} ${fmt(b.concurrent.peakMiB, 0).padStart(9)}`,
    `delivery delay at 30 ms pace p50 (ms) ${fmt(s.lag.p50, 1).padStart(10)} ${fmt(b.lag.p50, 1).padStart(9)}`,
    `delivery delay at 30 ms pace p99 (ms) ${fmt(s.lag.p99, 1).padStart(10)} ${fmt(b.lag.p99, 1).padStart(9)}`,
    `resume during run p50/p99 (ms)        ${`${fmt(s.resume.duringP50, 2)}/${fmt(s.resume.duringP99, 2)}`.padStart(10)} ${'n/a'.padStart(9)}`,
    `resume after run p50/p99 (ms)         ${`${fmt(s.resume.afterP50, 2)}/${fmt(s.resume.afterP99, 2)}`.padStart(10)} ${'n/a'.padStart(9)}`,
    '',
    'SQLite rows written per 1,000 delta events (event rows + run row writes):',
    ...rows.map(
      ([k, v]) =>
        `  ${k.padEnd(26)} ${fmt(v.rowsPer1000Deltas, 1).padStart(8)} rows  (${fmt(v.eventsPerRow, 1)} events/row, ${v.runs} runs)`,
    ),
    '',
    'targets:',
    target('single-stream throughput >= 0.5x bare', ratio(s.throughput.eventsPerSec, b.throughput.eventsPerSec) >= 0.5),
    target('p50 time to first event <= 2.5x bare', ratio(s.ttfe.p50, b.ttfe.p50) <= 2.5),
    target(`${N_CONCURRENT} concurrent streams with 0 errors`, s.concurrent.errors === 0),
    target('<= 100 rows per 1,000 deltas (delayMs 0, tokens 10000)', fast && fast.rowsPer1000Deltas <= 100),
  ];
  console.log(lines.join('\n'));
}

const target = (name, ok) => `  ${ok ? 'PASS' : 'MISS'}  ${name}`;

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
