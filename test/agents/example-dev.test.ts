// The echo example end to end: a real `wrangler dev` whose PROFILES names
// it (no built-in profile does), started by an anonymous caller as a
// widget would: listed, streamed, its options checked against the
// profile's clientOptions, its documented failure and a cancel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { createRun, readSse, textOf } from '../support/sse';

const PROFILES = {
  echo: { agent: 'echo', description: 'Says your words back', prefix: 'You said:', clientOptions: ['delayMs'], default: true },
  backwards: { agent: 'echo', options: { reverse: true, delayMs: 0 } },
};
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ vars: { PROFILES: JSON.stringify(PROFILES) } });
});
afterAll(async () => {
  await server?.stop();
});

const post = (body: object, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
const streamed = (body: object) =>
  readSse(`${server.url}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });

describe('the echo example through PROFILES', () => {
  it('is listed by GET /v1/agents under its profiles only', async () => {
    const res = await fetch(`${server.url}/v1/agents`);
    expect(res.status).toBe(200);
    const listed = JSON.stringify(await res.json());
    expect(listed).toContain('{"name":"echo","description":"Says your words back","default":true}');
    expect(listed).toContain('"name":"backwards"');
    expect(listed).not.toContain('"name":"demo"');
  });

  it('streams the query back word by word, after the profile prefix, and completes', async () => {
    const read = await streamed({ agent: 'echo', query: 'hello edge world', options: { delayMs: 5 } });
    expect(read.status).toBe(200);
    expect(read.events.map((e) => e.event)).toEqual(['run', 'status', 'delta', 'delta', 'delta', 'delta', 'result', 'done']);
    expect(textOf(read.events)).toBe('You said: hello edge world');
    expect(read.events.at(-2)!.data).toMatchObject({ type: 'result', text: 'You said: hello edge world', data: { words: 3 } });
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
  });

  it("a profile's fixed options apply, and the default profile answers a request without agent", async () => {
    expect(textOf((await streamed({ agent: 'backwards', query: 'one two three' })).events)).toBe('three two one');
    expect(textOf((await streamed({ query: 'no agent named' })).events)).toBe('You said: no agent named');
  });

  it.each([
    ['an option outside clientOptions', { agent: 'echo', query: 'q', options: { reverse: true } }, 'options.reverse'],
    ['an option out of its bounds', { agent: 'echo', query: 'q', options: { delayMs: 60_000 } }, 'options.delayMs'],
    ['a profile setting (prefix) sent as an option', { agent: 'echo', query: 'q', options: { prefix: 'mine' } }, 'options.prefix'],
  ])('refuses %s with 400 invalid_request naming it', async (_what, body, field) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain(field);
  });

  it('a query without words ends with error nothing_to_echo and done failed', async () => {
    const read = await streamed({ agent: 'echo', query: ' \t ' });
    expect(read.events.map((e) => e.data)).toMatchObject([
      { type: 'run', agent: 'echo' },
      { type: 'error', code: 'nothing_to_echo', message: 'the query has no words to echo', retryable: false },
      { type: 'done', state: 'failed' },
    ]);
  });

  it('cancel stops it mid-answer: no result, done cancelled', async () => {
    const { requestId, token } = await createRun(server.url, { agent: 'echo', query: 'word '.repeat(100), options: { delayMs: 100 } });
    const auth = { Authorization: `Bearer ${token}` };
    let cancelled: Promise<Response> | undefined;
    const started = Date.now();
    const read = await readSse(
      `${server.url}/v1/runs/${requestId}/events`,
      { headers: auth, signal: AbortSignal.timeout(30_000) },
      (events) => {
        if (!cancelled && events.filter((e) => e.event === 'delta').length === 2) {
          cancelled = fetch(`${server.url}/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth });
        }
        return false;
      },
    );
    expect((await cancelled!).status).toBe(202);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(read.events.some((e) => e.event === 'result')).toBe(false);
    expect(read.events.filter((e) => e.event === 'delta').length).toBeLessThan(10);
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'cancelled' });
  });
});
