#!/usr/bin/env node
/**
 * `npm run bench` (`-- --quick` for a short pass): the service against two
 * baselines measured in the same process and the same rounds:
 *   bare   a Worker streaming the same demo events (bench/bare-worker.ts)
 *   floor  a Worker + Durable Object streaming them with no storage
 *          (bench/floor-worker.ts): the Durable Object hop alone, crossed
 *          as the service crosses it (an RPC method returning the stream);
 *          floor-fetch crosses it by `stub.fetch()` instead.
 * All start with wrangler's programmatic runner and the inspector OFF
 * (wrangler dev's inspector copies every DO stream chunk; see
 * ../shared/NOTES.md). The cases every target can run are interleaved
 * round by round, so drift on this shared machine hits all of them alike.
 * Readers, replay and resume run on the service alone. Prints every figure,
 * every ratio and PASS/MISS per target; writes bench/out/results.json.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildLog, concurrent, pacedLag, READER_COUNTS, readers, replay, resume, rowsPer1000, throughput, ttfe } from './cases.mjs';
import { MEMORY_DIR, median, memKiB, pct, sleep, start } from './lib.mjs';
import { report } from './report.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const QUICK = process.argv.includes('--quick');
/** Rounds of the interleaved cases; each target runs each case once a round (TTFE: N_TTFE / ROUNDS). */
const ROUNDS = QUICK ? 1 : 3;
const N_TTFE = QUICK ? 40 : 210;
const N_RESUME = QUICK ? 10 : 30;
/** Requests before measuring: the first ones pay for compiling the Worker. */
const WARMUP = 20;
const REPLAY_SIZES = QUICK ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
const REPLAY_ROUNDS = QUICK ? 1 : 3;
const BENCH_KEY = 'bench-api-key-0123456789';
/** The keyed service's profiles: the built-in demo, and an external one to write replay logs with. */
const KEYED_PROFILES = JSON.stringify({
  demo: { agent: 'demo', clientOptions: ['tokens', 'delayMs'], default: true },
  feed: { agent: 'external', access: 'key', leaseSeconds: 600 },
});

process.env.WRANGLER_SEND_METRICS = 'false';
process.env.WRANGLER_SEND_ERROR_REPORTS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
process.env.WRANGLER_HIDE_BANNER = 'true';

const log = (msg) => console.error(`[bench ${((performance.now() - T0) / 1000).toFixed(0)}s] ${msg}`);
const T0 = performance.now();
const SERVICE_TOML = join(ROOT, 'wrangler.toml');

async function withTarget(target, fn) {
  try {
    return await fn(target);
  } finally {
    await target.worker.dispose();
    rmSync(target.persist, { recursive: true, force: true });
  }
}

/** Bare, floor (fetch and RPC hop) and service, started together, measured round by round. */
async function shared() {
  const floorToml = join(ROOT, 'bench', 'floor-wrangler.toml');
  const targets = [];
  try {
    targets.push(await start('bare', join(ROOT, 'bench', 'bare-wrangler.toml'), { path: '/' }));
    targets.push(await start('floor', floorToml, { path: '/?hop=rpc' }));
    targets.push(await start('floor-fetch', floorToml, { path: '/' }));
    targets.push(await start('service', SERVICE_TOML));
    // Time to first event only: the floor plus one stored row.
    const floorSql = await start('floor-sql', floorToml, { path: '/?hop=rpc&store=1' });
    targets.push(floorSql);
    const out = Object.fromEntries(targets.map((t) => [t.name, { ttfe: [], throughput: [], concurrent: [], lags: [] }]));
    for (const t of targets) await ttfe(t, WARMUP);
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no target always runs first (or right after the heaviest case).
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      log(`round ${round + 1}/${ROUNDS}: time to first event`);
      for (const t of order) out[t.name].ttfe.push(...(await ttfe(t, N_TTFE / ROUNDS)));
      const streaming = order.filter((t) => t !== floorSql);
      log(`round ${round + 1}/${ROUNDS}: one stream of 10k events`);
      for (const t of streaming) out[t.name].throughput.push(await throughput(t));
      log(`round ${round + 1}/${ROUNDS}: 200 concurrent streams`);
      for (const t of streaming) out[t.name].concurrent.push(await concurrent(t));
    }
    log('paced delivery delay');
    for (const t of targets) if (t.name !== 'floor-fetch' && t !== floorSql) out[t.name].lags = await pacedLag(t);
    const service = targets.find((t) => t.name === 'service');
    log('resume (service)');
    const rs = await resume(service, N_RESUME);
    out.service.resume = rs;
    out.service.rows = await rowsPer1000(service.persist);
    return out;
  } finally {
    for (const t of targets) {
      await t.worker.dispose();
      rmSync(t.persist, { recursive: true, force: true });
    }
  }
}

/**
 * Readers and replay: the service with API keys, alone. The replay logs are
 * written first, then replayed by a fresh instance on the same storage, so
 * its RSS says what replaying costs, not what writing them left behind.
 */
async function keyed() {
  const vars = { API_KEYS: BENCH_KEY, PROFILES: KEYED_PROFILES };
  const out = { readers: [], replay: {} };
  const logs = {};
  const writer = await start('service-keyed', SERVICE_TOML, { vars });
  const { persist } = writer;
  try {
    const warm = { headers: { Authorization: `Bearer ${BENCH_KEY}` } };
    for (let i = 0; i < WARMUP; i++) {
      const res = await fetch(writer.startUrl, {
        method: 'POST',
        ...warm,
        body: JSON.stringify({ query: 'warm', options: { tokens: 1 } }),
      });
      await res.arrayBuffer();
    }
    await sleep(500);
    out.idleMiB = memKiB(writer.pids).rss / 1024;
    out.pids = writer.pids;
    for (const count of READER_COUNTS) {
      log(`one run, ${count} readers`);
      out.readers.push(await readers(writer, count, BENCH_KEY, out.idleMiB));
    }
    for (const size of REPLAY_SIZES) {
      log(`writing a finished run of ${size} events`);
      const t0 = performance.now();
      logs[size] = await buildLog(writer, size, BENCH_KEY, 'feed');
      log(`  written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await writer.worker.dispose();
    const reader = await start('service-replay', SERVICE_TOML, { vars, persist });
    try {
      await sleep(500);
      out.replayIdleMiB = memKiB(reader.pids).rss / 1024;
      for (let round = 0; round < REPLAY_ROUNDS; round++) {
        for (const size of REPLAY_SIZES) {
          log(`replay of ${size} events (round ${round + 1}/${REPLAY_ROUNDS})`);
          (out.replay[size] ??= []).push(await replay(reader, logs[size], size, BENCH_KEY));
        }
      }
    } finally {
      await reader.worker.dispose();
    }
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
  return out;
}

/** Time to first event with SQLite files on this machine's disk (every commit an fsync). */
async function onDisk() {
  return withTarget(await start('service-disk', SERVICE_TOML, { baseDir: tmpdir() }), async (t) => {
    await ttfe(t, WARMUP);
    log('time to first event, storage on disk');
    return ttfe(t, Math.round(N_TTFE / ROUNDS));
  });
}

async function main() {
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  const results = {
    runner: `wrangler unstable_startWorker, inspector off, local workerd, DO storage in ${MEMORY_DIR}`,
    quick: QUICK,
    rounds: ROUNDS,
    startedAt: new Date().toISOString(),
    commit: process.env.BENCH_COMMIT ?? null,
  };
  results.shared = await shared();
  results.keyed = await keyed();
  results.diskTtfe = await onDisk();
  results.seconds = (performance.now() - T0) / 1000;
  writeFileSync(join(ROOT, 'bench', 'out', 'results.json'), JSON.stringify(results, null, 2));
  console.log(report(results, { median, pct }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
