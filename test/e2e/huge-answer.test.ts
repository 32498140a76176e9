// A multi-megabyte answer end to end: the fake model streams about 3 MB of
// text (non-ASCII, emoji, JSON escapes) in thousands of pieces, cut into
// network writes that end mid-character; a real EventSource reads the run
// through `wrangler dev`. What it gets must be what the model sent, byte for
// byte, and no SQLite row the run stored may pass the event log's row cap
// (the `result` carries the whole text, so it must be stored in parts).
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { storedRun } from '../support/do-storage';
import { HUGE_TEXT_BYTES, hugePieces, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
import { BACKEND_VARS, createRunAsBackend } from './backend';

/** The event log's cap on one row (src/run/event-log.ts MAX_ROW_BYTES), restated: the test states the promise. */
const MAX_ROW_BYTES = 512 * 1024;
const EVENT_TYPES = ['run', 'status', 'plan', 'delta', 'tool', 'result', 'error', 'done'];

let fake: FakeOpenAI;
let server: DevServer;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  server = await startDevServer({
    vars: { ...BACKEND_VARS, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test-huge', OPENAI_MODEL: 'plain' },
  });
});
afterAll(async () => {
  await server?.stop();
  await fake?.close();
});

interface Read {
  seqs: number[];
  deltas: string[];
  result?: { text: string };
  done?: string;
  errors: string[];
}

/** Read a run with EventSource until `done` (it reconnects by itself, with Last-Event-ID, if a connection drops). */
function readWithEventSource(url: string, timeoutMs: number): Promise<Read> {
  return new Promise((resolve, reject) => {
    const got: Read = { seqs: [], deltas: [], errors: [] };
    const es = new EventSource(url);
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`no done within ${timeoutMs} ms; ${got.seqs.length} events, last seq ${got.seqs.at(-1)}`));
    }, timeoutMs);
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (e) => {
        const message = e as MessageEvent<string>;
        // A connection error arrives as `error` too, without data.
        if (message.data === undefined) return;
        const data = JSON.parse(message.data);
        got.seqs.push(data.seq);
        if (type === 'delta') got.deltas.push(data.text);
        if (type === 'result') got.result = data;
        if (type === 'error') got.errors.push(`${data.code}: ${data.message}`);
        if (type === 'done') {
          got.done = data.state;
          clearTimeout(timer);
          es.close();
          resolve(got);
        }
      });
    }
    es.addEventListener('error', (e) => {
      if ((e as MessageEvent).data !== undefined) return;
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        reject(new Error(`EventSource gave up after ${got.seqs.length} events`));
      }
    });
  });
}

describe('a multi-megabyte answer', () => {
  it('reaches an EventSource byte for byte, and every stored row stays within the row cap', async () => {
    const sent = hugePieces().join('');
    expect(Buffer.byteLength(sent)).toBeGreaterThanOrEqual(HUGE_TEXT_BYTES);
    const { requestId, token } = await createRunAsBackend(server.url, {
      agent: 'openai',
      query: 'Write a lot.',
      options: { model: 'huge-3mb' },
    });
    const read = await readWithEventSource(`${server.url}/v1/runs/${requestId}/events?token=${token}`, 100_000);

    expect(read.errors).toEqual([]);
    expect(read.done).toBe('completed');
    expect(read.seqs).toEqual(Array.from({ length: read.seqs.length }, (_, i) => i + 1));
    const text = read.deltas.join('');
    // Buffers, so a mismatch is reported as bytes and not as a 3 MB string diff.
    expect(Buffer.from(text).equals(Buffer.from(sent)), `delta text: ${text.length} vs ${sent.length} UTF-16 units`).toBe(true);
    expect(Buffer.from(read.result!.text).equals(Buffer.from(sent)), 'result.text').toBe(true);
    // Streamed, not one lump at the end (how many the agent's 16 ms window merges depends on the machine's speed).
    expect(read.deltas.length).toBeGreaterThan(1);

    const stored = storedRun(server.persistDir, requestId);
    expect(stored).not.toBeNull();
    expect(stored!.events).toBe(read.seqs.length);
    expect(stored!.maxRowBytes).toBeLessThanOrEqual(MAX_ROW_BYTES);
    // The result frame (over 3 MB) could fit no row: it is in frame_parts, and the parts join to it.
    expect(stored!.partRows).toBeGreaterThanOrEqual(Math.ceil(HUGE_TEXT_BYTES / MAX_ROW_BYTES));
    // A frame is `id:`, `event:` and one `data:` line (split on LF only: SSE's own line ends).
    const dataOf = (frame: string) =>
      JSON.parse(
        frame
          .split('\n')
          .find((line) => line.startsWith('data: '))!
          .slice('data: '.length),
      );
    const storedDeltas = stored!.frames
      .filter((_, i) => stored!.types[i] === 'delta')
      .map((f) => dataOf(f).text as string)
      .join('');
    expect(Buffer.from(storedDeltas).equals(Buffer.from(sent)), 'stored delta text').toBe(true);
  });
});
