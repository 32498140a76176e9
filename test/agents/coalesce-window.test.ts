// The coalescing window, timed in-process: the openai agent against the fake
// upstream writing one token per network write at a fixed pace. The fake
// records when it wrote each token; we record when each delta came out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openaiAgent } from '../../src/agents/openai';
import { COALESCE_MS } from '../../src/agents/chat/coalesce';
import { preciseNow, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake?.close();
});

const env = { OPENAI_BASE_URL: '', OPENAI_API_KEY: 'sk-test-window' };
const input = (model: string) => ({ requestId: 'r', query: 'q', messages: [], options: { model } });

interface Timed {
  tokens: number;
  deltas: string[];
  /** Per token: when its delta came out minus when the fake wrote it (ms). */
  delays: number[];
}

async function timed(model: string, signal = new AbortController().signal, onDelta?: (n: number) => void): Promise<Timed> {
  const before = fake.requests.length;
  const out: { text: string; at: number }[] = [];
  for await (const e of openaiAgent.run(input(model), signal, { env: { ...env, OPENAI_BASE_URL: fake.baseUrl } as never, skip: 0 })) {
    if (e.type === 'delta') {
      out.push({ text: e.text, at: preciseNow() });
      onDelta?.(out.length);
    }
  }
  const sent = fake.requests[before]!.sent;
  const delays: number[] = [];
  for (const d of out) for (const [, i] of d.text.matchAll(/w(\d+) /g)) delays.push(d.at - sent[Number(i)]!.at);
  return { tokens: sent.length, deltas: out.map((d) => d.text), delays };
}

const max = (xs: number[]) => Math.max(...xs);
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;
const figures: string[] = [];
const note = (name: string, t: Timed) =>
  figures.push(
    `${name.padEnd(14)} tokens ${String(t.tokens).padStart(4)}  deltas ${String(t.deltas.length).padStart(4)}  ` +
      `delay p99 ${p99(t.delays).toFixed(1).padStart(5)} ms, max ${max(t.delays).toFixed(1).padStart(5)} ms`,
  );

/**
 * Timers and the event loop on a busy 2-core machine: measured maxima are
 * the window + about 1 ms, up to +14 ms while the code is still cold.
 */
const SLACK_MS = 20;

describe(`coalescing window (${COALESCE_MS} ms)`, () => {
  afterAll(() => console.log(`\n${figures.join('\n')}\n`));

  it('a token every 5 ms: at most half as many deltas as tokens, none held longer than the window', async () => {
    const t = await timed('paced-5-300');
    note('paced 5 ms', t);
    expect(t.deltas.join('')).toBe(Array.from({ length: 300 }, (_, i) => `w${i} `).join(''));
    expect(t.delays).toHaveLength(300);
    expect(t.deltas.length).toBeLessThanOrEqual(150);
    // The first token after the quiet start goes out alone and at once.
    expect(t.deltas[0]).toBe('w0 ');
    expect(max(t.delays)).toBeLessThanOrEqual(COALESCE_MS + SLACK_MS);
  });

  it('a token every 40 ms: one delta each, nothing held back', async () => {
    const t = await timed('paced-40-40');
    note('paced 40 ms', t);
    expect(t.deltas).toEqual(Array.from({ length: 40 }, (_, i) => `w${i} `));
    expect(max(t.delays)).toBeLessThanOrEqual(SLACK_MS);
  });

  it('a consumer that stops mid-window releases the upstream connection at once', async () => {
    const before = fake.requests.length;
    const started = Date.now();
    for await (const e of openaiAgent.run(input('paced-5-2000'), new AbortController().signal, {
      env: { ...env, OPENAI_BASE_URL: fake.baseUrl } as never,
      skip: 0,
    })) {
      if (e.type === 'delta' && e.text.includes('w5 ')) break;
    }
    const upstream = fake.requests[before]!;
    await upstream.closed;
    expect(upstream.closedEarly()).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('an abort mid-window ends the run without another delta', async () => {
    const abort = new AbortController();
    let deltasAfterAbort = 0;
    const t = await timed('paced-5-2000', abort.signal, (n) => {
      if (abort.signal.aborted) deltasAfterAbort++;
      else if (n === 3) abort.abort();
    });
    expect(t.deltas).toHaveLength(3);
    expect(deltasAfterAbort).toBe(0);
  });
});
