// The anthropic agent end to end: wrangler dev -> the run's Durable Object ->
// a local server speaking the Messages streaming wire format. `keyed` has
// API_KEYS (its tests pick the fake's scenario by model, which only a key
// may do); `open` has none, so anonymous callers get the built-in profile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { PLAIN_TEXT, startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic';
import { range, readSse, seqsOf, textOf, waitForState } from '../support/sse';
import { AS_BACKEND, BACKEND_VARS, startAsBackend } from './backend';

const KEY = 'sk-ant-api03-e2e-secret-0123456789';
let fake: FakeAnthropic;
let keyed: DevServer;
let open: DevServer;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  const vars = { ANTHROPIC_BASE_URL: fake.url, ANTHROPIC_API_KEY: KEY, ANTHROPIC_MODEL: 'plain' };
  [keyed, open] = await Promise.all([startDevServer({ vars: { ...BACKEND_VARS, ...vars } }), startDevServer({ vars })]);
});
afterAll(async () => {
  await Promise.all([keyed?.stop(), open?.stop()]);
  await fake?.close();
});

const startAnonymously = (base: string, body: object) =>
  fetch(`${base}/v1/runs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const eventsUrl = (base: string, run: { requestId: string; token: string }) => `${base}/v1/runs/${run.requestId}/events?token=${run.token}`;

describe('anthropic agent through wrangler dev', () => {
  it('a run streams, and a reader resumed mid-stream gets the same text as an uninterrupted read', async () => {
    const res = await startAsBackend(keyed.url, { agent: 'anthropic', query: 'count', options: { model: 'slow-150' } });
    expect(res.status).toBe(201);
    const run = (await res.json()) as { requestId: string; token: string };
    const url = eventsUrl(keyed.url, run);
    const [partial, whole] = await Promise.all([readSse(url, {}, (evs) => evs.length >= 30), readSse(url)]);
    const rest = await readSse(url, { headers: { 'Last-Event-ID': String(partial.events.at(-1)!.data.seq) } });
    const resumed = [...partial.events, ...rest.events];
    expect(seqsOf(resumed)).toEqual(range(1, whole.events.length));
    expect(textOf(resumed)).toBe(textOf(whole.events));
    expect(textOf(whole.events)).toBe(Array.from({ length: 150 }, (_, i) => `w${i} `).join(''));
    expect(whole.events[1]!.data).toMatchObject({ type: 'status', status: 'generating', message: 'Asking slow-150' });
    expect(whole.events.at(-2)!.data).toMatchObject({
      type: 'result',
      data: { finishReason: 'end_turn', usage: { input_tokens: 14, output_tokens: 16 } },
    });
    expect(whole.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
  });

  it('cancel aborts the upstream request: the fake sees its socket close', async () => {
    const before = fake.requests.length;
    const res = await startAsBackend(keyed.url, { agent: 'anthropic', query: 'long', options: { model: 'slow-2000' } });
    const run = (await res.json()) as { requestId: string; token: string };
    await readSse(eventsUrl(keyed.url, run), {}, (evs) => evs.some((e) => e.event === 'delta'));
    const cancel = await fetch(`${keyed.url}/v1/runs/${run.requestId}/cancel`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${run.token}` },
    });
    expect(cancel.status).toBe(202);
    const upstream = fake.requests[before]!;
    expect(upstream.body.model).toBe('slow-2000');
    await upstream.closed;
    expect(upstream.closedEarly()).toBe(true);
    expect(await waitForState(keyed.url, run.requestId, run.token)).toMatchObject({ state: 'cancelled' });
  });

  it('a thinking model and tool calls arrive as status, tool and result events', async () => {
    const thinking = await readSse(
      eventsUrl(
        keyed.url,
        (await (await startAsBackend(keyed.url, { agent: 'anthropic', query: 'q', options: { model: 'thinking' } })).json()) as any,
      ),
    );
    expect(thinking.events.filter((e) => e.event === 'status').map((e) => e.data.status)).toEqual(['generating', 'thinking', 'generating']);
    expect(textOf(thinking.events)).toBe('A log you can replay.');
    expect(thinking.events.at(-2)!.data).toMatchObject({
      type: 'result',
      data: { reasoning: 'The user asks about resumable streams. Keep it short.' },
    });
    const tools = await readSse(
      eventsUrl(
        keyed.url,
        (await (await startAsBackend(keyed.url, { agent: 'anthropic', query: 'q', options: { model: 'tool-use' } })).json()) as any,
      ),
    );
    expect(tools.events.filter((e) => e.event === 'tool').map((e) => [e.data.name, e.data.input])).toEqual([
      ['get_weather', { city: 'Paris', unit: 'c' }],
      ['get_time', { tz: 'Europe/Paris' }],
      ['list_cities', {}],
    ]);
  });

  it('an upstream error becomes an error event and done failed, without the key anywhere', async () => {
    for (const [model, code, retryable] of [
      ['http-401-echo', 'upstream_auth', false],
      ['error-overloaded', 'upstream_unavailable', true],
    ] as const) {
      const run = (await (await startAsBackend(keyed.url, { agent: 'anthropic', query: 'q', options: { model } })).json()) as {
        requestId: string;
        token: string;
      };
      const read = await readSse(eventsUrl(keyed.url, run));
      expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
        { type: 'error', code, retryable },
        { type: 'done', state: 'failed' },
      ]);
      expect(read.raw).not.toContain(KEY);
    }
    expect(keyed.output()).not.toContain(KEY);
    expect(open.output()).not.toContain(KEY);
  });

  it('an anonymous caller of the built-in profile cannot set the model (400, nothing sent upstream); it gets the deployment’s model, capped', async () => {
    const before = fake.requests.length;
    const refused = await startAnonymously(open.url, { agent: 'anthropic', query: 'q', options: { model: 'claude-opus-5' } });
    expect(refused.status).toBe(400);
    const error = ((await refused.json()) as any).error;
    expect(error.code).toBe('invalid_request');
    expect(error.message).toMatch(/^options\.model: /);
    expect(fake.requests.length).toBe(before);

    const res = await startAnonymously(open.url, { agent: 'anthropic', query: 'q' });
    expect(res.status).toBe(201);
    const read = await readSse(eventsUrl(open.url, (await res.json()) as any));
    expect(textOf(read.events)).toBe(PLAIN_TEXT);
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
    expect(fake.requests.slice(before).map((r) => r.body)).toEqual([
      { model: 'plain', max_tokens: 1024, messages: [{ role: 'user', content: 'q' }], stream: true },
    ]);
  });

  it('an API-key caller may set the model and options of the built-in profile', async () => {
    const before = fake.requests.length;
    const res = await startAsBackend(keyed.url, {
      agent: 'anthropic',
      query: 'q',
      options: { model: 'pings', temperature: 0.5, maxTokens: 2000 },
    });
    expect(res.status).toBe(201);
    const read = await readSse(eventsUrl(keyed.url, (await res.json()) as any));
    expect(textOf(read.events)).toBe(PLAIN_TEXT);
    expect(fake.requests.slice(before).map((r) => r.body)).toEqual([
      { model: 'pings', max_tokens: 2000, temperature: 0.5, messages: [{ role: 'user', content: 'q' }], stream: true },
    ]);
    // The same key without its Bearer is an anonymous caller, refused on a deployment with API_KEYS.
    expect((await startAnonymously(keyed.url, { agent: 'anthropic', query: 'q', options: { model: 'pings' } })).status).toBe(401);
  });

  it('lists anthropic where it is configured', async () => {
    const names = async (base: string, headers: Record<string, string> = {}) =>
      ((await (await fetch(`${base}/v1/agents`, { headers })).json()) as any).agents.map((a: any) => a.name);
    expect(await names(keyed.url, AS_BACKEND)).toEqual(expect.arrayContaining(['demo', 'anthropic']));
    expect(await names(open.url)).toEqual(expect.arrayContaining(['demo', 'anthropic']));
  });
});
