// How many events and SQLite rows a model's stream costs, measured in the
// Durable Object files of a real `wrangler dev`, against the fake upstream.
//
// Two layers keep writes low: the agent merges the text pieces that arrive
// in one network chunk into one `delta` event, and the event log stores all
// events appended within one macrotask as one row. Neither waits for more
// text, so a reader never gets a piece later than the network delivered it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { storedRun, type StoredRun } from '../support/do-storage';
import { fixtureEvents, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
import { createRun, readSse, textOf, waitForState } from '../support/sse';

let fake: FakeOpenAI;
let server: DevServer;
beforeAll(async () => {
  fake = await startFakeOpenAI();
  server = await startDevServer({ vars: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test-coalesce', OPENAI_MODEL: 'plain' } });
});
afterAll(async () => {
  await server?.stop();
  await fake?.close();
});

/** Upstream SSE events in the plain fixture that carry text. */
const PLAIN_TEXT_CHUNKS = fixtureEvents('plain').filter((e) => /"content":"[^"]/.test(e)).length;

interface Measured extends StoredRun {
  deltas: number;
  text: string;
}

async function measure(body: Record<string, unknown>): Promise<Measured> {
  const { requestId, token } = await createRun(server.url, body);
  expect(await waitForState(server.url, requestId, token)).toMatchObject({ state: 'completed' });
  const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
  const stored = storedRun(server.persistDir, requestId);
  expect(stored).not.toBeNull();
  expect(stored!.events).toBe(read.events.length);
  return { ...stored!, deltas: stored!.types.filter((t) => t === 'delta').length, text: textOf(read.events) };
}

const table: string[] = [];
const note = (name: string, m: Measured, upstreamTextChunks: number) =>
  table.push(`${name.padEnd(50)} upstream text chunks ${String(upstreamTextChunks).padStart(4)}  delta events ${String(m.deltas).padStart(4)}  events ${String(m.events).padStart(4)}  rows ${String(m.rows).padStart(4)}`);

describe('coalescing: events and rows per model stream', () => {
  afterAll(() => console.log(`\n${table.join('\n')}\n`));

  it('a burst (every token in one network chunk) becomes one delta event and few rows', async () => {
    const m = await measure({ agent: 'openai', query: 'q', options: { model: 'burst' } });
    note('openai, burst: 14 tokens in one chunk', m, PLAIN_TEXT_CHUNKS);
    expect(m.deltas).toBe(1);
    expect(m.rows).toBeLessThanOrEqual(4);
    expect(m.text).toBe('Resumable streams keep every token: the log is the source of truth.');
  });

  it('tokens paced by the network are stored as they come: one delta, one row each, nothing held back', async () => {
    const m = await measure({ agent: 'openai', query: 'q', options: { model: 'slow-100' } });
    note('openai, slow-100: 100 tokens 20 ms apart', m, 100);
    expect(m.deltas).toBe(100);
    // Each delta got its own row: the log did not wait for a second one.
    expect(m.rows).toBeGreaterThanOrEqual(m.deltas);
    expect(m.rows).toBeLessThanOrEqual(m.deltas + 4);
  });

  it('a fast model (a token every 2 ms) costs at most one delta and about one row per token', async () => {
    const m = await measure({ agent: 'openai', query: 'q', options: { model: 'plain' } });
    note('openai, plain: 14 tokens 2 ms apart', m, PLAIN_TEXT_CHUNKS);
    // How many tokens share a network chunk depends on timing; never more deltas than tokens.
    expect(m.deltas).toBeGreaterThanOrEqual(1);
    expect(m.deltas).toBeLessThanOrEqual(PLAIN_TEXT_CHUNKS);
    expect(m.rows).toBeLessThanOrEqual(m.deltas + 4);
  });

  it('chunks cut at awkward byte boundaries never yield more deltas than tokens', async () => {
    const m = await measure({ agent: 'openai', query: 'q', options: { model: 'split' } });
    note('openai, split: the plain stream in 7-byte chunks', m, PLAIN_TEXT_CHUNKS);
    expect(m.deltas).toBeLessThanOrEqual(PLAIN_TEXT_CHUNKS);
    expect(m.text).toBe('Resumable streams keep every token: the log is the source of truth.');
  });

  it('without the agent merging, a burst costs more events but no more rows (the log batches per macrotask)', async () => {
    // The demo agent at delayMs 0 yields 14 unmerged deltas within one turn:
    // what the openai agent would store for a burst if it did not merge.
    const m = await measure({ agent: 'demo', query: 'q', options: { tokens: PLAIN_TEXT_CHUNKS, delayMs: 0 } });
    note('demo, 14 deltas in one turn (an unmerged burst)', m, PLAIN_TEXT_CHUNKS);
    expect(m.deltas).toBe(PLAIN_TEXT_CHUNKS);
    expect(m.rows).toBeLessThanOrEqual(4);
  });
});
