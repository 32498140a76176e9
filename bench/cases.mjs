/**
 * The bench cases. Those the baselines can run too (first event, one stream,
 * 200 streams, paced delay) take any target; readers, replay and resume need
 * a run that outlives its stream, so only the service has them.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { median, memKiB, pct, readStream, sampleRss, sleep, streamRun } from './lib.mjs';

/** Events in a demo run besides the deltas: run, 6 stage events, result, done. */
export const OVERHEAD_EVENTS = 9;
export const N_CONCURRENT = 200;
export const EVENTS_PER_CONCURRENT = 500;
/** The run the readers read: 1,000 deltas 5 ms apart (about 5 s, as a model streams). */
export const READERS_RUN = { tokens: 1000, delayMs: 5 };
export const READER_COUNTS = [1, 10, 100, 1000];
/** Events an append carries in the replay logs (MAX_APPEND_EVENTS). */
const APPEND_EVENTS = 200;
/** Producers appending to one replay log at once (their appends interleave in the log). */
const PRODUCERS = 4;

/** Time to the first event of a fresh run, `n` times after each other. */
export async function ttfe(target, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const r = await streamRun(target, { query: `ttfe ${i}`, options: { tokens: 1, delayMs: 0 } });
    times.push(r.first);
  }
  return times;
}

/** One run of 10,000 deltas as fast as the agent makes them: events/s at the client. */
export async function throughput(target) {
  const r = await streamRun(target, { query: 'throughput', options: { tokens: 10_000, delayMs: 0 } });
  if (!r.done || r.events !== 10_000 + OVERHEAD_EVENTS) throw new Error(`[${target.name}] incomplete stream: ${r.events}`);
  return r.events / (r.total / 1000);
}

/** 200 runs at once, 500 events each: events/s over all, errors, workerd memory. */
export async function concurrent(target) {
  const before = memKiB(target.pids);
  const peak = sampleRss(target.pids);
  const t0 = performance.now();
  let errors = 0;
  let events = 0;
  const tokens = EVENTS_PER_CONCURRENT - OVERHEAD_EVENTS;
  const results = await Promise.allSettled(
    Array.from({ length: N_CONCURRENT }, (_, i) => streamRun(target, { query: `concurrent ${i}`, options: { tokens, delayMs: 0 } })),
  );
  const wall = (performance.now() - t0) / 1000;
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
  return { eventsPerSec: events / wall, errors, rssBeforeMiB: before.rss / 1024, peakMiB: peak() };
}

/** Delay between an event's `ts` (when it was produced) and its arrival, paced like a model. */
export async function pacedLag(target) {
  const r = await streamRun(target, { query: 'paced', options: { tokens: 200, delayMs: 30 } }, { lags: true });
  return r.lags;
}

/**
 * One run, then `count` readers of it opened at once (by API key: above the
 * anonymous cap). Every reader must get every event and `done`. The
 * slowest reader's delay is how long after the first reader finished the
 * last one did; RSS is sampled while they read, against `idleMiB` (the
 * instance's RSS once warm, before any reader case).
 */
export async function readers(target, count, key, idleMiB) {
  const auth = { Authorization: `Bearer ${key}` };
  const res = await fetch(target.startUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth },
    body: JSON.stringify({ query: `readers ${count}`, options: READERS_RUN }),
  });
  if (res.status !== 201) throw new Error(`start: ${res.status} ${await res.text()}`);
  const { requestId } = await res.json();
  const expected = READERS_RUN.tokens + OVERHEAD_EVENTS;
  const peak = sampleRss(target.pids);
  const t0 = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const r = await fetch(`${target.url}/v1/runs/${requestId}/events`, { headers: auth });
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      const read = await readStream(r, t0);
      if (!read.done || read.events !== expected) throw new Error(`incomplete (${read.events} events)`);
      return { events: read.events, finished: read.total, first: read.first };
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const peakMiB = peak();
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const reasons = {};
  for (const r of results) if (r.status === 'rejected') reasons[String(r.reason?.message)] = (reasons[String(r.reason?.message)] ?? 0) + 1;
  if (ok.length < count) console.error(`[readers ${count}] errors:`, reasons);
  const finished = ok.map((r) => r.finished);
  const firsts = ok.map((r) => r.first);
  return {
    firstEventMs: { min: Math.min(...firsts), max: Math.max(...firsts) },
    finishedMs: { min: Math.min(...finished), max: Math.max(...finished) },
    count,
    errors: count - ok.length,
    eventsPerSec: ok.reduce((n, r) => n + r.events, 0) / wall,
    slowestAfterFirstMs: finished.length ? Math.max(...finished) - Math.min(...finished) : null,
    idleMiB,
    peakMiB,
  };
}

/**
 * A finished run of `events` events in the log, written as an external
 * run's producers write (appends of 200 events, PRODUCERS at once). Returns
 * its requestId. The text of each delta is like a model's token.
 */
export async function buildLog(target, events, key, profile) {
  const auth = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
  const res = await fetch(target.startUrl, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ agent: profile, query: `replay ${events}` }),
  });
  if (res.status !== 201) throw new Error(`start: ${res.status} ${await res.text()}`);
  const { requestId } = await res.json();
  // The run event is seq 1 and `done` the last; deltas in between.
  const appends = Math.ceil((events - 2) / APPEND_EVENTS);
  let next = 0;
  const produce = async (p) => {
    let seq = 0;
    for (;;) {
      const i = next++;
      if (i >= appends) return;
      const n = Math.min(APPEND_EVENTS, events - 2 - i * APPEND_EVENTS);
      const body = Array.from({ length: n }, (_, j) => ({ type: 'delta', messageId: 'm1', text: ` word${(i * APPEND_EVENTS + j) % 997}` }));
      const r = await fetch(`${target.url}/v1/runs/${requestId}/events`, {
        method: 'POST',
        headers: { ...auth, 'Producer-Id': `p${p}`, 'Producer-Epoch': '0', 'Producer-Seq': String(seq++) },
        body: JSON.stringify(body),
      });
      if (r.status !== 200) throw new Error(`append: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, (_, p) => produce(p)));
  const end = await fetch(`${target.url}/v1/runs/${requestId}/events`, {
    method: 'POST',
    headers: { ...auth, 'Producer-Id': 'end', 'Producer-Epoch': '0', 'Producer-Seq': '0' },
    body: JSON.stringify([{ type: 'done', state: 'completed' }]),
  });
  if (end.status !== 200) throw new Error(`end: ${end.status} ${await end.text()}`);
  return requestId;
}

/** Replay a finished run from its start: seconds, MB/s, peak RSS while it streamed. */
export async function replay(target, requestId, events, key) {
  const peak = sampleRss(target.pids);
  const t0 = performance.now();
  const res = await fetch(`${target.url}/v1/runs/${requestId}/events`, { headers: { Authorization: `Bearer ${key}` } });
  const r = await readStream(res, t0);
  const seconds = (performance.now() - t0) / 1000;
  const peakMiB = peak();
  if (!r.done || r.events !== events) throw new Error(`replay of ${events}: ${r.events} events, done ${r.done}`);
  return { seconds, mbPerSec: r.bytes / 1e6 / seconds, mb: r.bytes / 1e6, peakMiB };
}

/** Time from a reconnect (GET with Last-Event-ID) to its first replayed event, during and after a run. */
export async function resume(target, n) {
  const during = [];
  const after = [];
  for (let i = 0; i < n; i++) {
    // during: a live run is still producing; the reader comes back at seq 50
    const live = await streamRunUntil(target, { query: `resume live ${i}`, options: { tokens: 400, delayMs: 5 } }, 60);
    during.push(await timeFirstReplayed(target, live, 50));
    // after: the run has completed; the reader comes back at seq 50
    const ended = await streamRun(target, { query: `resume ended ${i}`, options: { tokens: 400, delayMs: 0 } });
    after.push(await timeFirstReplayed(target, ended, 50));
  }
  return { during, after };
}

async function streamRunUntil(target, body, count) {
  const ac = new AbortController();
  const res = await fetch(target.startUrl, {
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

/** Reconnect at `lastEventId`: ms to the first replayed event (the rest is not read). */
async function timeFirstReplayed(target, { requestId, token }, lastEventId) {
  const t0 = performance.now();
  const res = await fetch(`${target.url}/v1/runs/${requestId}/events`, {
    headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': String(lastEventId) },
  });
  if (res.status !== 200) throw new Error(`resume: status ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('resumed stream ended before an event');
      text += decoder.decode(value, { stream: true });
      const at = text.indexOf('\nid: ');
      if (at >= 0) {
        const first = performance.now() - t0;
        const seq = Number(/^id: (\d+)/m.exec(text.slice(at + 1))?.[1]);
        if (seq !== lastEventId + 1) throw new Error(`resumed at ${seq}, expected ${lastEventId + 1}`);
        return first;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** SQLite rows written per 1,000 delta events, read from the DO databases on disk. */
export async function rowsPer1000(persist) {
  await sleep(500);
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.sqlite')) files.push(join(d, e.name));
    }
  };
  walk(join(persist, 'v3', 'do'));
  const byPace = {};
  for (const file of files) {
    let db;
    try {
      db = new DatabaseSync(file, { readOnly: true });
      const run = db.prepare('SELECT input FROM run').get();
      if (!run) continue;
      const { options } = JSON.parse(run.input);
      if (options?.tokens === undefined) continue;
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

export { median, pct };
