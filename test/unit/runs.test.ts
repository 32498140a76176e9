import { env } from 'cloudflare:workers';
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, createRun, postRun, range, readAll, readEventsResponse, readSse, seqs, text, waitUntilEnded } from './helpers';

const stubFor = (requestId: string) => env.RUNS.get(env.RUNS.idFromName(requestId));
const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A completed demo run with `tokens` deltas, read whole once. */
async function completedRun(tokens: number, query = 'what is edgestream?') {
  const run = await createRun({ query, options: { tokens, delayMs: 0 } });
  const full = await readAll(run.requestId, run.token);
  return { ...run, full };
}

describe('a run', () => {
  it('streams from seq 1 on POST with Accept: text/event-stream, retry first, then every stage, then done', async () => {
    const res = await postRun({ query: 'q', options: { tokens: 3, delayMs: 0 } }, { Accept: 'text/event-stream' });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/event-stream; charset=utf-8');
    // The contract's no-cache, no-transform, plus no-store: this answer carries the run's token.
    expect(res.headers.get('Cache-Control')).toBe('no-cache, no-store, no-transform');
    expect(res.headers.get('X-Accel-Buffering')).toBe('no');
    const requestId = res.headers.get('X-Request-Id')!;
    expect(res.headers.get('X-Run-Token')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { events, raw, retry } = await readSse(res);
    expect(raw.startsWith('retry: 1500\n\n')).toBe(true);
    expect(retry).toBe(1500);
    expect(events.map((e) => e.event)).toEqual([
      'run',
      'status',
      'plan',
      'status',
      'tool',
      'tool',
      'status',
      'delta',
      'delta',
      'delta',
      'result',
      'done',
    ]);
    expect(seqs(events)).toEqual(range(1, 12));
    for (const e of events) {
      expect(e.id).toBe(String(e.data.seq));
      expect(e.data.type).toBe(e.event);
      expect(e.data.requestId).toBe(requestId);
      expect(typeof e.data.ts).toBe('number');
    }
    expect(events[0]!.data).toMatchObject({ agent: 'demo' });
    expect(events.map((e) => e.data.status).filter(Boolean)).toEqual(['planning', 'searching', 'generating']);
    expect(events.filter((e) => e.event === 'tool').map((e) => e.data.phase)).toEqual(['call', 'result']);
    const result = events.find((e) => e.event === 'result')!;
    expect(result.data.text).toBe(text(events));
    expect(events.at(-1)!.data.state).toBe('completed');
  });

  it('is deterministic: the same query and options give the same events', async () => {
    const a = await completedRun(25, 'same question');
    const b = await completedRun(25, 'same question');
    const c = await completedRun(25, 'how do I embed the widget?');
    const strip = (evs: typeof a.full.events) => evs.map(({ data: { requestId, ts, createdAt, ...rest } }) => rest);
    expect(strip(a.full.events)).toEqual(strip(b.full.events));
    expect(text(c.full.events)).not.toBe(text(a.full.events));
    expect(a.full.events.filter((e) => e.event === 'delta')).toHaveLength(25);
  });

  it('keeps going with no reader, to the end', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 40, delayMs: 2 } });
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ requestId, agent: 'demo', state: 'completed', lastEventId: 7 + 40 + 2 });
    expect(status.finishedAt).toBeGreaterThanOrEqual(status.createdAt);
    const { events } = await readAll(requestId, token);
    expect(seqs(events)).toEqual(range(1, 49));
  });

  it('fails with one error event and done failed when the agent fails', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 10, delayMs: 0, failAfter: 4 } });
    const { events } = await readAll(requestId, token);
    expect(events.filter((e) => e.event === 'delta')).toHaveLength(4);
    expect(events.slice(-2).map((e) => e.event)).toEqual(['error', 'done']);
    expect(events.at(-2)!.data).toMatchObject({ code: 'demo_failure', retryable: false });
    expect(events.at(-1)!.data.state).toBe('failed');
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'demo_failure' } });
  });

  it('sends keepalive comments while the stream is quiet', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 2, delayMs: 800 } });
    const { comments, events } = await readAll(requestId, token);
    expect(comments.filter((c) => c === 'keepalive').length).toBeGreaterThanOrEqual(2);
    expect(events.at(-1)!.event).toBe('done');
  });
});

describe('resuming', () => {
  it('gives exactly the events after Last-Event-ID, for every point of a finished run', async () => {
    const { requestId, token, full } = await completedRun(20);
    const last = full.events.length;
    for (let n = 0; n < last; n++) {
      const { events } = await readAll(requestId, token, n);
      expect(seqs(events)).toEqual(range(n + 1, last));
      expect(events).toEqual(full.events.slice(n));
    }
  });

  it('answers 204 when the run has ended and nothing can follow', async () => {
    const { requestId, token, full } = await completedRun(3);
    const last = full.events.length;
    for (const n of [last, last + 1, 10 ** 12]) {
      const res = await readEventsResponse(requestId, token, n);
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    }
  });

  it('takes ?lastEventId= when there is no header, and the header over the query', async () => {
    const { requestId, token } = await completedRun(5);
    const viaQuery = await call(`/v1/runs/${requestId}/events?token=${token}&lastEventId=9`);
    expect(seqs((await readSse(viaQuery)).events)).toEqual(range(10, 14));
    const both = await call(`/v1/runs/${requestId}/events?token=${token}&lastEventId=2`, { headers: { 'Last-Event-ID': '12' } });
    expect(seqs((await readSse(both)).events)).toEqual([13, 14]);
  });

  it('resumes mid-live with no gap and no duplicate', async () => {
    const { requestId, token } = await createRun({ query: 'live', options: { tokens: 40, delayMs: 5 } });
    const first = await readSse(await readEventsResponse(requestId, token), (evs) => evs.length >= 12);
    const got = seqs(first.events);
    const rest = await readAll(requestId, token, got.at(-1));
    const all = [...first.events, ...rest.events];
    expect(seqs(all)).toEqual(range(1, 49));
    expect(all.at(-1)!.event).toBe('done');
  });

  it('resumes mid-replay: a reader that dropped during replay continues where it stopped', async () => {
    const { requestId, token, full } = await completedRun(3000);
    const partial = await readSse(await readEventsResponse(requestId, token), (evs) => evs.length >= 1000);
    const cut = partial.events.at(-1)!.data.seq as number;
    const rest = await readAll(requestId, token, cut);
    expect([...partial.events, ...rest.events]).toEqual(full.events);
  });

  it('resumes before the first event (Last-Event-ID 0) with the whole log', async () => {
    const { requestId, token, full } = await completedRun(4);
    expect((await readAll(requestId, token, 0)).events).toEqual(full.events);
  });

  it('gives a reader that stops reading everything later, from storage', async () => {
    const { requestId, token } = await createRun({ query: 'slow', options: { tokens: 5000, delayMs: 0 } });
    const res = await readEventsResponse(requestId, token);
    const reader = res.body!.getReader();
    await reader.read(); // connected; now stop reading while the run finishes
    await waitUntilEnded(requestId, token);
    let rest = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
    }
    const ids = [...rest.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.at(-1)).toBe(7 + 5000 + 2);
    expect(ids).toEqual(range(ids[0]!, 5009));
  });
});

describe('readers', () => {
  it('serves many readers at once, each with every event exactly once', async () => {
    const { requestId, token } = await createRun({ query: 'many', options: { tokens: 60, delayMs: 3 } });
    const reads = await Promise.all(range(1, 8).map(() => readAll(requestId, token)));
    for (const { events } of reads) expect(seqs(events)).toEqual(range(1, 69));
    expect(new Set(reads.map((r) => text(r.events))).size).toBe(1);
  });

  it('lets a reader join mid-run and get replay then live', async () => {
    const { requestId, token } = await createRun({ query: 'join', options: { tokens: 60, delayMs: 5 } });
    await readSse(await readEventsResponse(requestId, token), (evs) => evs.length >= 30);
    const late = await readAll(requestId, token);
    expect(seqs(late.events)).toEqual(range(1, 69));
  });

  it('keeps the run going when a reader disconnects', async () => {
    const res = await postRun({ query: 'bye', options: { tokens: 30, delayMs: 5 } }, { Accept: 'text/event-stream' });
    const requestId = res.headers.get('X-Request-Id')!;
    const token = res.headers.get('X-Run-Token')!;
    await readSse(res, (evs) => evs.length >= 10); // then cancel the body: the client went away
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ state: 'completed', lastEventId: 39 });
  });
});

describe('idempotent start', () => {
  it('attaches a repeated POST with the run token to the same run, honouring Last-Event-ID', async () => {
    const body = { query: 'retry me', requestId: 'client-chosen.id:1', options: { tokens: 5, delayMs: 0 } };
    const first = await postRun(body, { Accept: 'text/event-stream' });
    const token = first.headers.get('X-Run-Token')!;
    const original = await readSse(first);
    const again = await postRun(body, { Accept: 'text/event-stream', ...auth(token), 'Last-Event-ID': '3' });
    expect(again.status).toBe(200);
    expect(again.headers.get('X-Request-Id')).toBe('client-chosen.id:1');
    expect(again.headers.get('X-Run-Token')).toBe(token);
    expect((await readSse(again)).events).toEqual(original.events.slice(3));
    const json = await postRun(body, auth(token));
    expect(json.status).toBe(200);
    expect(await json.json()).toMatchObject({ requestId: 'client-chosen.id:1', token, state: 'completed' });
  });

  it('answers 409 run_exists without the token, and starts no second run', async () => {
    const body = { query: 'mine', requestId: 'taken-id', options: { tokens: 2, delayMs: 0 } };
    const { token } = await createRun(body);
    for (const headers of [{}, auth('not-the-token')]) {
      const res = await postRun(body, headers);
      expect(res.status).toBe(409);
      expect(((await res.json()) as any).error.code).toBe('run_exists');
    }
    const { events } = await readAll('taken-id', token);
    expect(events.filter((e) => e.event === 'run')).toHaveLength(1);
  });
});

describe('cancel', () => {
  it('stops the agent, appends done cancelled once, answers 202 then 200 unchanged', async () => {
    const { requestId, token } = await createRun({ query: 'stop', options: { tokens: 1000, delayMs: 20 } });
    const reading = readAll(requestId, token);
    await new Promise((r) => setTimeout(r, 150));
    const res = await call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth(token) });
    expect(res.status).toBe(202);
    const status = (await res.json()) as any;
    expect(status.state).toBe('cancelled');
    const { events } = await reading;
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', state: 'cancelled', seq: status.lastEventId });
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
    expect(events.filter((e) => e.event === 'delta').length).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 100)); // nothing may be appended after done
    const again = await call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth(token) });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(status);
  });

  it('leaves a finished run as it was', async () => {
    const { requestId, token } = await completedRun(2);
    const res = await call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth(token) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).state).toBe('completed');
  });
});

/** Tables of ours in an object's SQLite (workerd keeps its own `_cf_` ones). */
function userTables(state: DurableObjectState): string[] {
  return state.storage.sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
    .toArray()
    .map((r) => r.name);
}

describe('alarms and restarts', () => {
  it('fails a run that passes its deadline with deadline_exceeded', async () => {
    const { requestId, token } = await createRun({ query: 'long', options: { tokens: 100_000, delayMs: 50 } });
    const stub = stubFor(requestId);
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec('UPDATE run SET deadline_at = ? WHERE id = 1', Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'deadline_exceeded', retryable: false } });
    const { events } = await readAll(requestId, token);
    expect(events.slice(-2).map((e) => e.event)).toEqual(['error', 'done']);
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
  });

  it('keeps an ended run until its TTL, then deletes it by alarm', async () => {
    const { requestId, token } = await completedRun(2);
    const stub = stubFor(requestId);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // early: TTL not reached, kept
    expect((await call(`/v1/runs/${requestId}`, { headers: auth(token) })).status).toBe(200);
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec('UPDATE run SET finished_at = ? WHERE id = 1', Date.now() - 86_400_001);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const gone = await call(`/v1/runs/${requestId}`, { headers: auth(token) });
    expect(gone.status).toBe(404);
    const events = await readEventsResponse(requestId, token);
    expect(events.status).toBe(404);
    await runInDurableObject(stub, (_o, state) => {
      // Nothing is left behind: not a row, not even an empty table.
      expect(userTables(state)).toEqual([]);
    });
  });

  it('writes nothing for a run that does not exist, however it is asked', async () => {
    const requestId = 'never-started';
    await call(`/v1/runs/${requestId}/events?token=guess`);
    await call(`/v1/runs/${requestId}`, { headers: auth('guess') });
    await call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth('guess') });
    await runInDurableObject(stubFor(requestId), (_o, state) => {
      expect(userTables(state)).toEqual([]);
    });
  });

  it('ends a run found past its deadline after a restart with deadline_exceeded, not retryable', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 100_000, delayMs: 50 } });
    await runInDurableObject(stubFor(requestId), (_o, state) => {
      state.storage.sql.exec('UPDATE run SET deadline_at = ? WHERE id = 1', Date.now() - 1);
    });
    await abortAllDurableObjects();
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'deadline_exceeded', retryable: false } });
    expect(status.error.message).toMatch(/deadline/);
  });

  it('resumes a deterministic run after a restart, with the same text and one done', async () => {
    const reference = await completedRun(200, 'restart me');
    const { requestId, token } = await createRun({ query: 'restart me', options: { tokens: 200, delayMs: 3 } });
    const before = await readSse(await readEventsResponse(requestId, token), (evs) => evs.length >= 40);
    await abortAllDurableObjects(); // the isolate and its agent are gone; storage stays
    const after = await readAll(requestId, token, before.events.at(-1)!.data.seq);
    const all = [...before.events, ...after.events];
    expect(seqs(all)).toEqual(range(1, 209));
    expect(text(all)).toBe(text(reference.full.events));
    expect(all.filter((e) => e.event === 'done').map((e) => e.data.state)).toEqual(['completed']);
  });

  it('fails an interrupted run whose agent cannot be replayed with interrupted, retryable', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 100_000, delayMs: 50 } });
    await runInDurableObject(stubFor(requestId), (_o, state) => {
      // Stand-in for a non-deterministic agent (a hosted model): one the registry cannot replay.
      state.storage.sql.exec("UPDATE run SET input = json_set(input, '$.agent', 'not-replayable') WHERE id = 1");
    });
    await abortAllDurableObjects();
    const status = await waitUntilEnded(requestId, token);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'interrupted', retryable: true } });
    const { events } = await readAll(requestId, token);
    expect(events.slice(-2).map((e) => [e.event, e.data.code ?? e.data.state])).toEqual([
      ['error', 'interrupted'],
      ['done', 'failed'],
    ]);
  });
});

describe('hostile text', () => {
  it('never breaks the framing, whatever the query holds', async () => {
    const query = 'a\n\nevent: done\ndata: {}\r\nid: 9\r\u2028\u2029\u0000 retry: 1 : x';
    const res = await postRun({ query, options: { tokens: 3, delayMs: 0 } }, { Accept: 'text/event-stream' });
    const { events, raw } = await readSse(res);
    expect(seqs(events)).toEqual(range(1, 12));
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
    expect(events.find((e) => e.event === 'tool')!.data.input.query).toBe(query);
    // Every non-empty line is a known field or the keepalive comment.
    for (const line of raw.split('\n').filter(Boolean))
      expect(line).toMatch(/^(retry: \d+|id: \d+|event: [a-z]+|data: \{.*\}|: keepalive)$/);
  });
});
