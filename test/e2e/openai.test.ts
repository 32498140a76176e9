// The openai agent end to end: wrangler dev -> the run's Durable Object ->
// a local server speaking the OpenAI wire format. `server` has API_KEYS: its
// tests pick the fake's scenario by model, which only a key may do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
import { range, readSse, seqsOf, textOf, waitForState } from '../support/sse';
import { AS_BACKEND, BACKEND_VARS, startAsBackend } from './backend';

const KEY = 'sk-test-e2e-secret-0123456789';
let fake: FakeOpenAI;
let server: DevServer;
let bare: DevServer;
let moved: DevServer;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  [server, bare, moved] = await Promise.all([
    startDevServer({ vars: { ...BACKEND_VARS, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: KEY, OPENAI_MODEL: 'plain' } }),
    startDevServer(), // no model configured
    // A base URL that redirects, with a query string to keep (Azure's api-version).
    startDevServer({
      vars: { OPENAI_BASE_URL: `${fake.url}/redirect/v1?api-version=2024-10-21`, OPENAI_API_KEY: KEY, OPENAI_MODEL: 'plain' },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), bare?.stop(), moved?.stop()]);
  await fake?.close();
});

const start = (base: string, body: object) =>
  fetch(`${base}/v1/runs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

describe('openai agent through wrangler dev', () => {
  it('a reader resumed mid-stream gets the same text as an uninterrupted read', async () => {
    const res = await startAsBackend(server.url, { agent: 'openai', query: 'count', options: { model: 'slow-150' } });
    expect(res.status).toBe(201);
    const { requestId, token } = (await res.json()) as { requestId: string; token: string };
    const url = `${server.url}/v1/runs/${requestId}/events?token=${token}`;
    const [partial, whole] = await Promise.all([readSse(url, {}, (evs) => evs.length >= 30), readSse(url)]);
    const rest = await readSse(url, { headers: { 'Last-Event-ID': String(partial.events.at(-1)!.data.seq) } });
    const resumed = [...partial.events, ...rest.events];
    expect(seqsOf(resumed)).toEqual(range(1, whole.events.length));
    expect(textOf(resumed)).toBe(textOf(whole.events));
    expect(textOf(whole.events)).toBe(Array.from({ length: 150 }, (_, i) => `w${i} `).join(''));
    expect(whole.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
    expect(whole.events.at(-2)!.data).toMatchObject({ type: 'result', data: { finishReason: 'stop' } });
  });

  it('cancel aborts the upstream request', async () => {
    const before = fake.requests.length;
    const res = await startAsBackend(server.url, { agent: 'openai', query: 'long', options: { model: 'slow-2000' } });
    const { requestId, token } = (await res.json()) as { requestId: string; token: string };
    await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`, {}, (evs) => evs.some((e) => e.event === 'delta'));
    const cancel = await fetch(`${server.url}/v1/runs/${requestId}/cancel`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(cancel.status).toBe(202);
    const upstream = fake.requests[before]!;
    await upstream.closed; // the test server saw the socket close
    expect(upstream.closedEarly()).toBe(true);
    expect(await waitForState(server.url, requestId, token)).toMatchObject({ state: 'cancelled' });
  });

  it('an upstream error becomes an error event and done failed, without the key', async () => {
    const res = await startAsBackend(server.url, { agent: 'openai', query: 'q', options: { model: 'http-401' } });
    const { requestId, token } = (await res.json()) as { requestId: string; token: string };
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'upstream_auth', retryable: false },
      { type: 'done', state: 'failed' },
    ]);
    expect(read.raw).not.toContain(KEY);
    expect(server.output()).not.toContain(KEY);
  });

  it('lists openai only where it is configured, and refuses it elsewhere with agent_not_configured', async () => {
    const names = async (base: string, headers: Record<string, string> = {}) =>
      ((await (await fetch(`${base}/v1/agents`, { headers })).json()) as any).agents.map((a: any) => a.name);
    expect(await names(server.url, AS_BACKEND)).toEqual(expect.arrayContaining(['demo', 'openai']));
    expect(await names(bare.url)).toEqual(['demo']);
    const refused = await start(bare.url, { agent: 'openai', query: 'q' });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as any;
    expect(body.error.code).toBe('agent_not_configured');
    expect(body.error.message).toMatch(/OPENAI_API_KEY/);
    // Not even a key caller may point the agent elsewhere: the agent has no such option.
    const badOption = await startAsBackend(server.url, { agent: 'openai', query: 'q', options: { baseUrl: 'http://evil.example' } });
    expect(badOption.status).toBe(400);
    const badError = ((await badOption.json()) as any).error;
    expect(badError.code).toBe('invalid_request');
    expect(badError.message).toMatch(/^options: .*baseUrl/);
  });

  it('a reasoning model: a thinking status, then the answer; the thoughts only in the result', async () => {
    const res = await startAsBackend(server.url, { agent: 'openai', query: 'q', options: { model: 'reasoning-deepseek' } });
    const { requestId, token } = (await res.json()) as { requestId: string; token: string };
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    const statuses = read.events.filter((e) => e.event === 'status').map((e) => e.data.status);
    expect(statuses).toEqual(['generating', 'thinking', 'generating']);
    expect(textOf(read.events)).toBe('A log you can replay.');
    expect(read.events.at(-2)!.data).toMatchObject({ type: 'result', data: { reasoning: 'Okay, the user asks about resumable streams.' } });
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
  });

  it('workerd does not follow a redirecting OPENAI_BASE_URL, and kept its query string', async () => {
    const before = fake.requests.length;
    const res = await start(moved.url, { agent: 'openai', query: 'q' });
    const { requestId, token } = (await res.json()) as { requestId: string; token: string };
    const read = await readSse(`${moved.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'upstream_rejected', message: 'OPENAI_BASE_URL redirects; set the final URL', retryable: false },
      { type: 'done', state: 'failed' },
    ]);
    expect(fake.requests.slice(before).map((r) => r.path)).toEqual(['/redirect/v1/chat/completions?api-version=2024-10-21']);
  });
});
