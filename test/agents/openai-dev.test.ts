// Every way an upstream can misbehave, through a real `wrangler dev`: the
// run ends with an honest `error` and `done` failed, never a 500 or a hang,
// and the API key appears nowhere (stream, status, wrangler's output).
// The tests pick the fake's scenario by model, so they start runs as the
// deployment's API-key backend (an anonymous caller may not choose one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
import { readSse, textOf } from '../support/sse';
import { BACKEND_VARS, createRunAsBackend } from '../e2e/backend';

const KEY = 'sk-test-dev-badupstream-0123456789';
/** Short, so stall scenarios end quickly; the fake's paced streams send every 20 ms. */
const IDLE_MS = '1500';
let fake: FakeOpenAI;
let server: DevServer;
let shortRuns: DevServer;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  const vars = {
    ...BACKEND_VARS,
    OPENAI_BASE_URL: fake.baseUrl,
    OPENAI_API_KEY: KEY,
    OPENAI_MODEL: 'plain',
    OPENAI_IDLE_TIMEOUT_MS: IDLE_MS,
  };
  [server, shortRuns] = await Promise.all([
    startDevServer({ vars }),
    // Runs end at their deadline after 2 s: the deadline must abort the upstream request too.
    startDevServer({ vars: { ...vars, MAX_RUN_SECONDS: '2' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), shortRuns?.stop()]);
  await fake?.close();
});

/** Start a run, read it to its end (bounded), return the stream and the final status. */
async function runToEnd(base: string, options: Record<string, unknown>) {
  const { requestId, token } = await createRunAsBackend(base, { agent: 'openai', query: 'q', options });
  const read = await readSse(`${base}/v1/runs/${requestId}/events?token=${token}`, { signal: AbortSignal.timeout(30_000) });
  const status = await fetch(`${base}/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } });
  return { read, status: status.status, statusBody: await status.text() };
}

describe('bad upstreams through wrangler dev', () => {
  it.each([
    ['http-429', 'upstream_rate_limited', true],
    ['http-500', 'upstream_unavailable', true],
    ['cut', 'upstream_disconnected', true],
    ['malformed', 'upstream_malformed', true],
    ['no-done', 'upstream_incomplete', true],
    ['error-chunk', 'upstream_error', true],
    ['stall', 'upstream_timeout', true],
    ['no-headers', 'upstream_timeout', true],
  ])('%s ends the run with error %s (retryable %s) and done failed', async (model, code, retryable) => {
    const { read, status, statusBody } = await runToEnd(server.url, { model });
    expect(read.status).toBe(200);
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code, retryable },
      { type: 'done', state: 'failed' },
    ]);
    expect(status).toBe(200);
    expect(JSON.parse(statusBody)).toMatchObject({ state: 'failed', error: { code, retryable } });
    expect(read.raw + statusBody).not.toContain(KEY);
  });

  it('text that arrived before a cut stays in the log', async () => {
    const { read } = await runToEnd(server.url, { model: 'cut' });
    expect(textOf(read.events)).toBe('Resumable streams keep every');
  });

  it('a server that keeps the connection open after [DONE] still completes the run', async () => {
    const started = Date.now();
    const { read } = await runToEnd(server.url, { model: 'done-open' });
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
    expect(Date.now() - started).toBeLessThan(Number(IDLE_MS));
  });

  it('the run deadline aborts the upstream request', async () => {
    const before = fake.requests.length;
    const { read } = await runToEnd(shortRuns.url, { model: 'slow-2000' });
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'deadline_exceeded' },
      { type: 'done', state: 'failed' },
    ]);
    const upstream = fake.requests[before]!;
    await upstream.closed; // the test server saw the socket close
    expect(upstream.closedEarly()).toBe(true);
  });

  it('never shows the key in wrangler’s output', () => {
    expect(server.output()).not.toContain(KEY);
    expect(shortRuns.output()).not.toContain(KEY);
  });
});
