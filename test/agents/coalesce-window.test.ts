// The coalescing window, in virtual time: `coalesceText` fed by a source that
// yields one token per "network read" at a fixed pace, with vitest's fake
// timers driving both the source's pace and the window's timer. Every figure
// is exact, so the bounds are the design's own (no slack for a busy machine);
// wall-clock latency is the bench's business, not a test's.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AgentEvent } from '../../src/events';
import { COALESCE_MS, coalesceText } from '../../src/agents/chat/coalesce';
import type { Step } from '../../src/agents/chat/answer';
import { openaiAgent } from '../../src/agents/openai/openai';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Source extends AsyncIterator<Step[]> {
  /** When (virtual ms) token i was read. */
  readAt: number[];
  returned: boolean;
}

/** `count` tokens `w0 `, `w1 `, ... one per read, `paceMs` apart; `extra` steps after token `at`. */
function pacedSource(count: number, paceMs: number, extra?: { at: number; steps: Step[] }): Source {
  let i = 0;
  const source: Source = {
    readAt: [],
    returned: false,
    async next() {
      if (i >= count) return { done: true, value: undefined };
      await tick(i === 0 ? 0 : paceMs);
      source.readAt.push(Date.now());
      const steps: Step[] = [`w${i} `];
      if (extra?.at === i) steps.push(...extra.steps);
      i++;
      return { done: false, value: steps };
    },
    async return() {
      source.returned = true;
      return { done: true, value: undefined };
    },
  };
  return source;
}

interface Out {
  events: AgentEvent[];
  /** Per delta: when it came out (virtual ms). */
  at: number[];
}

async function drain(
  source: AsyncIterator<Step[]>,
  signal = new AbortController().signal,
  onEvent?: (e: AgentEvent) => void,
): Promise<Out> {
  const out: Out = { events: [], at: [] };
  const done = (async () => {
    for await (const e of coalesceText(source, { messageId: 'm1', windowMs: COALESCE_MS, signal })) {
      out.events.push(e);
      out.at.push(Date.now());
      onEvent?.(e);
    }
  })();
  // Run virtual time forward until the generator finishes.
  let settled = false;
  void done.finally(() => {
    settled = true;
  });
  while (!settled) await vi.advanceTimersByTimeAsync(1);
  await done;
  return out;
}

const deltas = (out: Out) => out.events.flatMap((e, i) => (e.type === 'delta' ? [{ text: e.text, at: out.at[i]! }] : []));

/** Per token: how long it was held (its delta's time minus its read's time). */
function holds(out: Out, source: Source): number[] {
  const held: number[] = [];
  for (const d of deltas(out)) for (const [, i] of d.text.matchAll(/w(\d+) /g)) held.push(d.at - source.readAt[Number(i)]!);
  return held;
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `).join('');

describe(`coalescing window (${COALESCE_MS} ms), in virtual time`, () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a token every 5 ms: the first at once, then about one delta per window, none held longer than the window', async () => {
    const source = pacedSource(300, 5);
    const out = await drain(source);
    const ds = deltas(out);
    expect(ds.map((d) => d.text).join('')).toBe(words(300));
    expect(ds[0]!.text).toBe('w0 ');
    const held = holds(out, source);
    expect(held).toHaveLength(300);
    expect(Math.max(...held)).toBeLessThanOrEqual(COALESCE_MS);
    expect(held[0]).toBe(0);
    // 1,495 ms of tokens: one delta per 16 ms window after the first, give or take the pace's phase.
    expect(ds.length).toBeGreaterThanOrEqual(Math.floor(1495 / 20));
    expect(ds.length).toBeLessThanOrEqual(Math.ceil(1495 / 15) + 2);
  });

  it('a token every 40 ms: one delta each, nothing held back', async () => {
    const source = pacedSource(40, 40);
    const out = await drain(source);
    expect(deltas(out).map((d) => d.text)).toEqual(Array.from({ length: 40 }, (_, i) => `w${i} `));
    expect(holds(out, source).every((h) => h === 0)).toBe(true);
  });

  it('a token every 16 ms (exactly the window): never merged, never held', async () => {
    const source = pacedSource(50, COALESCE_MS);
    const out = await drain(source);
    expect(deltas(out)).toHaveLength(50);
    expect(Math.max(...holds(out, source))).toBe(0);
  });

  it('held text goes out before a non-text event, which keeps its place', async () => {
    const tool: AgentEvent = { type: 'tool', name: 'lookup', input: {} } as AgentEvent;
    const source = pacedSource(10, 5, { at: 4, steps: [tool] });
    const out = await drain(source);
    const types = out.events.map((e) => (e.type === 'delta' ? e.text : e.type)).join('|');
    // Everything up to w4 is out before the tool event; nothing after w4 comes before it.
    const [before, after] = types.split('|tool|');
    expect(before!.replace(/\|/g, '')).toBe(words(5));
    expect(after!.replace(/\|/g, '')).toBe('w5 w6 w7 w8 w9 ');
  });

  it('an abort mid-window ends the output without another delta', async () => {
    const abort = new AbortController();
    let afterAbort = 0;
    let seen = 0;
    const source = pacedSource(2000, 5);
    await drain(source, abort.signal, () => {
      if (abort.signal.aborted) afterAbort++;
      else if (++seen === 3) abort.abort();
    });
    expect(seen).toBe(3);
    expect(afterAbort).toBe(0);
  });

  it('a source that fails mid-window: the held text goes out first, then the error', async () => {
    let i = 0;
    const source: AsyncIterator<Step[]> = {
      async next() {
        await tick(5);
        if (i === 6) throw new Error('upstream broke');
        return { done: false, value: [`w${i++} `] };
      },
    };
    const events: AgentEvent[] = [];
    const run = (async () => {
      for await (const e of coalesceText(source, { messageId: 'm1', windowMs: COALESCE_MS, signal: new AbortController().signal }))
        events.push(e);
    })();
    const failed = run.then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    let outcome: string | undefined;
    void failed.then((o) => {
      outcome = o;
    });
    while (outcome === undefined) await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toBe('upstream broke');
    expect(events.map((e) => (e.type === 'delta' ? e.text : '')).join('')).toBe(words(6));
  });
});

describe('coalescing in the openai agent, against the fake upstream', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake?.close();
  });
  const run = (model: string) =>
    openaiAgent.run({ requestId: 'r', query: 'q', messages: [], options: { model } }, new AbortController().signal, {
      env: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test-window' } as never,
      skip: 0,
    });

  it('a consumer that stops mid-window releases the upstream connection', async () => {
    const before = fake.requests.length;
    for await (const e of run('paced-5-2000')) {
      if (e.type === 'delta' && e.text.includes('w5 ')) break;
    }
    const upstream = fake.requests[before]!;
    await upstream.closed;
    // Closed by us, long before the fake's 2,000 tokens (10 s) were written.
    expect(upstream.closedEarly()).toBe(true);
    expect(upstream.sent.length).toBeLessThan(2000);
  });

  it('merges a fast stream: fewer deltas than tokens, the text exact', async () => {
    const deltas: string[] = [];
    for await (const e of run('paced-5-300')) if (e.type === 'delta') deltas.push(e.text);
    expect(deltas.join('')).toBe(words(300));
    // A busy machine only merges more; the exact figures are in virtual time above.
    expect(deltas.length).toBeLessThanOrEqual(150);
  });
});
