// The client against a scripted server that fails in every way a network
// and a server can: the run must still arrive exactly once and in order.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRun, backoffDelay, retryAfterMs, type RunEvent } from '../../src/client/index';
import { BACKOFF_DEFAULTS } from '../../src/client/backoff';
import { SCRIPTED_ID, SCRIPTED_TOKEN, startScriptedServer, type ScriptedServer, type Step } from '../support/scripted-server';
import { range } from '../support/sse';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { initialMs: 10, maxMs: 50, maxAttempts: 8, resetAfterMs: 10_000 };

async function follow(total: number, script: Step[], extra: Partial<ConstructorParameters<typeof AgentRun>[0]> = {}) {
  server = await startScriptedServer(total, script);
  const events: RunEvent[] = [];
  const states: string[] = [];
  const run = new AgentRun({
    endpoint: server.url,
    query: 'q',
    backoff: FAST,
    heartbeatMs: 100,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    ...extra,
  });
  await run.finished;
  return { run, events, states, requests: server.requests };
}

describe('client against a misbehaving server', () => {
  it('resumes through repeated cuts with Last-Event-ID, never re-POSTing, exactly once in order', async () => {
    const { run, events, requests, states } = await follow(
      60,
      Array.from({ length: 20 }, () => ({ send: 7, then: 'cut' as const })),
    );
    expect(events.map((e) => e.seq)).toEqual(range(1, 60));
    expect(run.runState).toBe('completed');
    expect(run.state).toBe('closed');
    expect(requests[0]!.method).toBe('POST');
    expect(requests.slice(1).every((r) => r.method === 'GET' && r.path === `/v1/runs/${SCRIPTED_ID}/events`)).toBe(true);
    expect(requests.slice(1).map((r) => Number(r.lastEventId))).toEqual(range(1, requests.length - 1).map((i) => Math.min(7 * i, 60)));
    expect(states).toContain('reconnecting');
    expect(states.at(-1)).toBe('closed');
  });

  it('drops duplicates the server repeats', async () => {
    const { events } = await follow(30, [{ send: 10, then: 'cut' }, { duplicates: 5, send: 10, then: 'cut' }, { duplicates: 3 }]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 30));
  });

  it('reconnects from the last contiguous seq when it sees a gap', async () => {
    const { events, requests } = await follow(30, [{ send: 5, then: 'close' }, { skip: true }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 30));
    // the gapped connection delivered seq 6, then jumped: resume from 6
    expect(requests[2]!.lastEventId).toBe('6');
  });

  it('treats a silent connection as dead after 2.5 heartbeats and reconnects', async () => {
    const started = Date.now();
    const { events, requests } = await follow(20, [{ send: 5, then: 'stall' }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 20));
    expect(requests).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('honours Retry-After on 429 and retries 503', async () => {
    const { events, requests } = await follow(10, [{ send: 3, then: 'cut' }, { status: 429, retryAfter: '1' }, { status: 503 }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 10));
    expect(requests[2]!.at - requests[1]!.at).toBeGreaterThanOrEqual(950);
  });

  it('stops for good on 204: nothing can follow', async () => {
    const { run, requests } = await follow(10, [{ send: 3, then: 'cut' }, { status: 204 }]);
    expect(run.state).toBe('closed');
    expect(requests).toHaveLength(2);
  });

  it('stops with an error on 404 and other 4xx, without retrying', async () => {
    const { run, requests } = await follow(10, [
      { send: 3, then: 'cut' },
      { status: 404, code: 'run_not_found' },
    ]);
    expect(run.state).toBe('error');
    expect(run.error).toMatchObject({ code: 'run_not_found', status: 404 });
    expect(requests).toHaveLength(2);
  });

  it('gives up after maxAttempts and says so', async () => {
    const { run, requests } = await follow(10, [{ send: 2, then: 'cut' }, ...Array.from({ length: 10 }, () => ({ status: 503 }))], {
      backoff: { ...FAST, maxAttempts: 3 },
    });
    expect(run.state).toBe('error');
    expect(run.error!.code).toBe('retries_exhausted');
    expect(requests).toHaveLength(1 + 3); // the start, then three reconnection attempts
  });

  it('persists the handle while running and clears it at done', async () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
      removeItem: (k: string) => void store.delete(k),
    };
    const seen: (string | undefined)[] = [];
    const { run } = await follow(12, [{ send: 4, then: 'cut' }, {}], {
      persistKey: 'k',
      storage,
      onEvent: (e) => seen.push(e.seq === 4 ? store.get('k') : undefined),
    });
    expect(JSON.parse(seen[3]!)).toEqual({ requestId: SCRIPTED_ID, token: SCRIPTED_TOKEN, lastEventId: 4 });
    expect(store.has('k')).toBe(false);
    expect(run.runState).toBe('completed');
  });

  it('applies backpressure: reads only as far ahead of a slow iterator as its high-water mark', async () => {
    server = await startScriptedServer(300, []);
    const run = new AgentRun({ endpoint: server.url, query: 'q', highWaterMark: 8 });
    let consumed = 0;
    let maxAhead = 0;
    for await (const event of run) {
      consumed++;
      maxAhead = Math.max(maxAhead, run.lastEventId - event.seq);
      if (consumed % 50 === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(consumed).toBe(300);
    expect(maxAhead).toBeLessThanOrEqual(8);
  });

  it('disconnects on AbortSignal without cancelling, and keeps the handle', async () => {
    server = await startScriptedServer(1000, [{ send: 5, then: 'stall' }]);
    const abort = new AbortController();
    const run = new AgentRun({ endpoint: server.url, query: 'q', signal: abort.signal, onEvent: (e) => e.seq === 5 && abort.abort() });
    await run.finished;
    expect(run.state).toBe('closed');
    expect(run.handle).toEqual({ requestId: SCRIPTED_ID, token: SCRIPTED_TOKEN, lastEventId: 5 });
    expect(server.requests.map((r) => r.path)).toEqual(['/v1/runs']); // no cancel was sent
  });
});

describe('client: starts, failures and misuse', () => {
  it('gives up waiting for response headers after the watchdog time and tries again', async () => {
    const { events, requests } = await follow(12, [{ send: 3, then: 'cut' }, { answer: 'never' }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 12));
    expect(requests).toHaveLength(3);
    expect(requests[2]!.at - requests[1]!.at).toBeGreaterThanOrEqual(240); // 2.5 x 100 ms heartbeat
  });

  it('does not take a 200 that is not an event stream (a captive portal) for the run', async () => {
    const { run, events, requests } = await follow(10, [{ answer: 'html' }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 10));
    expect(run.state).toBe('closed');
    // The page was not the run: the start is tried again (same requestId), and the token comes from the real answer.
    expect(requests.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(run.token).toBe(SCRIPTED_TOKEN);
  });

  it('backs off when a gap repeats at the same place, and gives up in the end', async () => {
    const { run, events, requests } = await follow(
      20,
      Array.from({ length: 30 }, () => ({ malformedSeq: 2 })),
      {
        backoff: { initialMs: 40, maxMs: 40, maxAttempts: 3, resetAfterMs: 10_000 },
      },
    );
    expect(events.map((e) => e.seq)).toEqual([1]); // seq 2 never arrives readable
    expect(run.state).toBe('error');
    expect(run.error!.code).toBe('retries_exhausted');
    // the first gap reconnects at once, repeats wait: 1 + 1 + 3 requests, not a tight loop
    expect(requests).toHaveLength(5);
  });

  it('retries a POST whose answer was lost with the same requestId', async () => {
    const { run, events, requests } = await follow(8, [{ answer: 'reset' }, { status: 503 }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 8));
    expect(requests.map((r) => r.method)).toEqual(['POST', 'POST', 'POST']);
    const ids = requests.map((r) => JSON.parse(r.body).requestId);
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toMatch(/^web_[0-9a-f]{32}$/);
    expect(run.state).toBe('closed');
  });

  it('attaches to the run a lost first answer created: the retry carries the same requestId and startSecret', async () => {
    const store = new Map<string, string>();
    const written: string[] = [];
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void (written.push(v), store.set(k, v)),
      removeItem: (k: string) => void store.delete(k),
    };
    const logged: unknown[] = [];
    const consoles = { ...console };
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const)
      console[level] = (...args: unknown[]) => void logged.push(...args);
    let result: Awaited<ReturnType<typeof follow>>;
    try {
      // The first POST reaches the server, which closes the connection before any byte of its answer.
      result = await follow(12, [{ answer: 'reset' }, {}], { persistKey: 'k', storage });
    } finally {
      Object.assign(console, consoles);
    }
    const { run, events, requests } = result;
    expect(events.map((e) => e.seq)).toEqual(range(1, 12));
    expect(run.state).toBe('closed');
    expect(run.error).toBeUndefined();
    expect(run.token).toBe(SCRIPTED_TOKEN);
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/runs', 'POST /v1/runs']);
    const [first, retry] = requests.map((r) => JSON.parse(r.body));
    expect(first.requestId).toMatch(/^web_[0-9a-f]{32}$/);
    expect(first.startSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first).toEqual({ query: 'q', requestId: first.requestId, startSecret: first.startSecret });
    expect(requests[1]!.body).toBe(requests[0]!.body); // byte for byte the same start
    expect(retry.startSecret).toBe(first.startSecret);
    // The handle was persisted while the run went on, and never with the secret.
    expect(written.length).toBeGreaterThan(0);
    for (const value of written) {
      expect(value).not.toContain(first.startSecret);
      expect(Object.keys(JSON.parse(value)).sort()).toEqual(['lastEventId', 'requestId', 'token']);
    }
    expect(store.has('k')).toBe(false); // cleared at done
    expect(JSON.stringify(run.handle ?? {})).not.toContain(first.startSecret);
    expect(logged.map(String).join('\n')).not.toContain(first.startSecret);
  });

  it('makes a new startSecret per start, and sends a caller-supplied one as it is', async () => {
    server = await startScriptedServer(3, []);
    await new AgentRun({ endpoint: server.url, query: 'q' }).finished;
    await new AgentRun({ endpoint: server.url, query: 'q' }).finished;
    const own = 'server-side caller secret: kept across restarts';
    const opts = { endpoint: server.url, query: 'q', requestId: 'job-42', startSecret: own };
    await new AgentRun(opts).finished;
    const bodies = server.requests.map((r) => JSON.parse(r.body));
    expect(bodies[0].startSecret).not.toBe(bodies[1].startSecret);
    expect(bodies[2]).toEqual({ query: 'q', requestId: 'job-42', startSecret: own });
    expect(opts.startSecret).toBe(own); // the caller's options untouched
  });

  it('sends no startSecret when it resumes a handle (no POST at all)', async () => {
    server = await startScriptedServer(6, []);
    const run = new AgentRun({ endpoint: server.url, resume: { requestId: SCRIPTED_ID, token: SCRIPTED_TOKEN, lastEventId: 2 } });
    await run.finished;
    expect(server.requests.map((r) => [r.method, r.body])).toEqual([['GET', '']]);
  });

  it('says start_unconfirmed when the retried POST meets a run its startSecret does not open (409)', async () => {
    const { run, requests } = await follow(8, [{ answer: 'reset' }, { status: 409, code: 'run_exists' }]);
    expect(run.state).toBe('error');
    expect(run.error).toMatchObject({ code: 'start_unconfirmed', status: 409 });
    expect(run.error!.message).toMatch(/exists.*startSecret does not open it/);
    expect(requests).toHaveLength(2);
    expect(JSON.parse(requests[1]!.body).startSecret).toBe(JSON.parse(requests[0]!.body).startSecret);
  });

  it('does not wait forever for an error body that stalls after its headers', async () => {
    const { events, requests } = await follow(10, [{ send: 3, then: 'cut' }, { status: 502, stallBody: true }, {}]);
    expect(events.map((e) => e.seq)).toEqual(range(1, 10));
    expect(requests).toHaveLength(3);
    expect(requests[2]!.at - requests[1]!.at).toBeGreaterThanOrEqual(240); // gave the body 2.5 heartbeats
  });

  it('says start_unconfirmed when a POST answered by a page is retried into a 409', async () => {
    const { run } = await follow(8, [{ answer: 'html' }, { status: 409, code: 'run_exists' }]);
    expect(run.error).toMatchObject({ code: 'start_unconfirmed' });
  });

  it('saves the position and clears it at done with neither callbacks nor an iterator', async () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
      removeItem: (k: string) => void store.delete(k),
    };
    server = await startScriptedServer(12, [{ send: 5, then: 'cut' }, {}]);
    const run = new AgentRun({ endpoint: server.url, query: 'q', persistKey: 'bare', storage, backoff: FAST, heartbeatMs: 100 });
    const saved: number[] = [];
    const original = storage.setItem;
    storage.setItem = (k, v) => {
      saved.push(JSON.parse(v).lastEventId);
      original(k, v);
    };
    await run.finished;
    expect(saved.at(-1)).toBe(11); // the last event before done
    expect(store.has('bare')).toBe(false);
  });

  it('does not start at all with a signal that is already aborted', async () => {
    server = await startScriptedServer(5, []);
    const run = new AgentRun({ endpoint: server.url, query: 'q', signal: AbortSignal.abort() });
    await run.finished;
    expect(run.state).toBe('closed');
    expect(server.requests).toHaveLength(0);
    await expect(run.cancel()).rejects.toThrow(); // nothing to cancel, and no hang
  });

  it('fails at once, without retrying, on an endpoint that is not a URL', async () => {
    const run = new AgentRun({ endpoint: 'not a url', query: 'q', backoff: FAST });
    await run.finished;
    expect(run.error).toMatchObject({ code: 'invalid_endpoint' });
  });

  it('cancel() rejects instead of hanging when the run never started', async () => {
    const { run } = await follow(5, [{ status: 400, code: 'invalid_request' }]);
    expect(run.error).toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(run.cancel()).rejects.toThrow(/invalid_request|scripted/);
  });

  it('leaves the caller options untouched, so reusing them starts a new run', async () => {
    server = await startScriptedServer(3, []);
    const opts = { endpoint: server.url, query: 'q' };
    await new AgentRun(opts).finished;
    await new AgentRun(opts).finished;
    expect(opts).toEqual({ endpoint: server.url, query: 'q' });
    const ids = server.requests.map((r) => JSON.parse(r.body).requestId);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('keeps going when a callback throws', async () => {
    const errors = console.error;
    console.error = () => {};
    try {
      const seen: number[] = [];
      const { run } = await follow(10, [], {
        onEvent: (e) => {
          seen.push(e.seq);
          throw new Error('app bug');
        },
      });
      expect(seen).toEqual(range(1, 10));
      expect(run.state).toBe('closed');
    } finally {
      console.error = errors;
    }
  });
});

describe('client: the async iterator', () => {
  it('misses nothing when the loop starts after an await', async () => {
    server = await startScriptedServer(40, []);
    const run = new AgentRun({ endpoint: server.url, query: 'q' });
    await run.finished; // everything has arrived before anyone iterates
    const seqs: number[] = [];
    for await (const e of run) seqs.push(e.seq);
    expect(seqs).toEqual(range(1, 40));
  });

  it('throws the client error instead of ending as if the run were done', async () => {
    server = await startScriptedServer(10, [
      { send: 3, then: 'cut' },
      { status: 404, code: 'run_not_found' },
    ]);
    const run = new AgentRun({ endpoint: server.url, query: 'q', backoff: FAST, heartbeatMs: 100 });
    const seqs: number[] = [];
    await expect(
      (async () => {
        for await (const e of run) seqs.push(e.seq);
      })(),
    ).rejects.toMatchObject({ name: 'AgentRunError', code: 'run_not_found', status: 404 });
    expect(seqs).toEqual([1, 2, 3]);
  });

  it('persists the position the consumer reached, not the one the network reached', async () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
      removeItem: (k: string) => void store.delete(k),
    };
    server = await startScriptedServer(200, []);
    const run = new AgentRun({ endpoint: server.url, query: 'q', persistKey: 'p', storage, highWaterMark: 16 });
    let checked = false;
    for await (const e of run) {
      if (e.seq === 20) {
        await new Promise((r) => setTimeout(r, 50)); // let the network run ahead
        expect(run.lastEventId).toBeGreaterThan(20);
        expect(JSON.parse(store.get('p')!).lastEventId).toBe(20);
        checked = true;
      }
    }
    expect(checked).toBe(true);
    expect(store.has('p')).toBe(false); // cleared at done
  });
});

describe('backoff', () => {
  it('draws full jitter below an exponentially growing, capped ceiling', () => {
    const opts = { ...BACKOFF_DEFAULTS, initialMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, opts, () => 0.999)).toBe(99);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(400);
    expect(backoffDelay(10, opts, () => 0.999)).toBe(999);
    expect(backoffDelay(5, opts, () => 0)).toBe(0);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 5_000)).toBe(5000);
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });
});
