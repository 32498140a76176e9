// The openai agent against a local server speaking the real wire format.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openaiAgent } from '../../src/agents/openai/openai';
import { AgentError } from '../../src/agents/types';
import type { AgentEvent } from '../../src/events';
import { startFakeOpenAI, UTF8_PIECES, type FakeOpenAI } from '../support/fake-openai';
import { agentContractTests, collect } from './contract';

const KEY = 'sk-test-very-secret-key-0123456789';
let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake?.close();
});

const env = (extra: Record<string, string> = {}) => ({
  OPENAI_BASE_URL: fake.baseUrl,
  OPENAI_API_KEY: KEY,
  OPENAI_MODEL: 'plain',
  ...extra,
});
const input = (options: Record<string, unknown> = {}, messages: any[] = []) => ({
  requestId: 'r1',
  query: 'What is a resumable stream?',
  messages,
  options,
});

/** The events a run yielded before it failed, and the failure. */
async function untilFailure(options: Record<string, unknown>, extraEnv: Record<string, string> = {}) {
  const events: AgentEvent[] = [];
  try {
    for await (const e of openaiAgent.run(input(options), new AbortController().signal, { env: env(extraEnv) as never, skip: 0 }))
      if (e.type !== 'checkpoint') events.push(e);
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return { events, error: err as AgentError, text: textOf(events) };
  }
  throw new Error('expected the run to fail');
}

const textOf = (events: AgentEvent[]) => events.map((e) => (e.type === 'delta' ? e.text : '')).join('');

async function failure(options: Record<string, unknown>, extraEnv: Record<string, string> = {}): Promise<AgentError> {
  try {
    await collect(openaiAgent, input(options), env(extraEnv));
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return err as AgentError;
  }
  throw new Error('expected the run to fail');
}

const PLAIN_TEXT = 'Resumable streams keep every token: the log is the source of truth.';

agentContractTests('openai', () => ({
  agent: openaiAgent,
  env: env(),
  input: input(),
  longInput: input({ model: 'slow-200' }),
}));

describe('openai agent', () => {
  it('sends a streaming Chat Completions request with the conversation, options and key', async () => {
    const before = fake.requests.length;
    const history = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ];
    await collect(openaiAgent, input({ temperature: 0.2, maxTokens: 50 }, history), env());
    const req = fake.requests[before]!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers.accept).toBe('text/event-stream');
    expect(req.body).toEqual({
      model: 'plain',
      messages: [...history, { role: 'user', content: 'What is a resumable stream?' }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      max_tokens: 50,
    });
  });

  it('maps content deltas to delta events and finish_reason and usage to the result', async () => {
    const events = await collect(openaiAgent, input(), env());
    const text = events
      .filter((e) => e.type === 'delta')
      .map((e: any) => e.text)
      .join('');
    expect(text).toBe(PLAIN_TEXT);
    const result = events.at(-1) as Extract<AgentEvent, { type: 'result' }>;
    expect(result).toMatchObject({ type: 'result', text: PLAIN_TEXT });
    expect(result.data).toEqual({
      model: 'plain',
      finishReason: 'stop',
      usage: { prompt_tokens: 12, completion_tokens: 14, total_tokens: 26 },
    });
  });

  it('parses chunks split at awkward byte boundaries', async () => {
    const events = await collect(openaiAgent, input({ model: 'split' }), env());
    expect((events.at(-1) as any).text).toBe(PLAIN_TEXT);
  });

  it('coalesces the deltas that arrive in one network chunk, or within 16 ms, into one event', async () => {
    const burst = await collect(openaiAgent, input({ model: 'burst' }), env());
    // 14 text chunks, 2 ms apart: about 30 ms of text, two or three windows.
    const paced = await collect(openaiAgent, input({ model: 'plain' }), env());
    expect(burst.filter((e) => e.type === 'delta')).toHaveLength(1);
    const deltas = paced.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    expect(deltas.length).toBeLessThanOrEqual(5);
    // The first piece after a quiet spell is not held back.
    expect(deltas[0]).toMatchObject({ text: 'Resumable' });
    expect((burst.at(-1) as any).text).toBe((paced.at(-1) as any).text);
    expect(textOf(paced)).toBe(PLAIN_TEXT);
  });

  it('assembles tool calls streamed in fragments into tool events', async () => {
    const events = await collect(openaiAgent, input({ model: 'tool-calls' }), env());
    const tools = events.filter((e) => e.type === 'tool');
    expect(tools).toEqual([
      { type: 'tool', messageId: 'm1', name: 'get_weather', phase: 'call', input: { city: 'Paris' } },
      { type: 'tool', messageId: 'm1', name: 'get_time', phase: 'call', input: { tz: 'Europe/Paris' } },
    ]);
    const result = events.at(-1) as any;
    expect(result.data.finishReason).toBe('tool_calls');
    expect(result.data.toolCalls.map((c: any) => c.id)).toEqual(['call_Qx1', 'call_Qx2']);
  });

  it.each([
    ['http-401', 'upstream_auth', false],
    ['http-429', 'upstream_rate_limited', true],
    ['http-500', 'upstream_unavailable', true],
    ['http-400', 'upstream_rejected', false],
    ['cut', 'upstream_disconnected', true],
    ['malformed', 'upstream_malformed', true],
    ['no-done', 'upstream_incomplete', true],
    ['error-chunk', 'upstream_error', true],
  ])('turns upstream %s into %s (retryable: %s)', async (model, code, retryable) => {
    const err = await failure({ model });
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
  });

  it('fails a stalled stream after the idle timeout', async () => {
    const started = Date.now();
    const err = await failure({ model: 'stall' }, { OPENAI_IDLE_TIMEOUT_MS: '300' });
    expect(err.code).toBe('upstream_timeout');
    expect(err.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fails a server that never answers after the idle timeout, and closes the request', async () => {
    const before = fake.requests.length;
    const started = Date.now();
    const err = await failure({ model: 'no-headers' }, { OPENAI_IDLE_TIMEOUT_MS: '300' });
    expect(err.code).toBe('upstream_timeout');
    expect(err.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    const upstream = fake.requests[before]!;
    await upstream.closed;
    expect(upstream.closedEarly()).toBe(true);
  });

  it('completes at [DONE] even when the server keeps the connection open', async () => {
    const before = fake.requests.length;
    const started = Date.now();
    // The idle timeout is long: finishing quickly shows [DONE] ended the read, not the timeout.
    const events = await collect(openaiAgent, input({ model: 'done-open' }), env({ OPENAI_IDLE_TIMEOUT_MS: '30000' }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT });
    const upstream = fake.requests[before]!;
    await upstream.closed; // we hung up: the connection is not left dangling
    expect(upstream.closedEarly()).toBe(true);
  });

  it('offers client-defined tools to the model and validates them', async () => {
    const before = fake.requests.length;
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather by city',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const parsed = openaiAgent.options.parse({ model: 'tool-calls', tools });
    await collect(openaiAgent, input(parsed), env());
    expect(fake.requests[before]!.body.tools).toEqual(tools);
    expect(openaiAgent.options.safeParse({ tools: [{ type: 'function', function: { name: 'rm -rf /' } }] }).success).toBe(false);
    expect(openaiAgent.options.safeParse({ tools: [{ type: 'code_interpreter' }] }).success).toBe(false);
    expect(openaiAgent.options.safeParse({ tools: Array.from({ length: 33 }, () => tools[0]) }).success).toBe(false);
  });

  it('asks again without stream_options when the server refuses that field, and only then', async () => {
    const before = fake.requests.length;
    const events = await collect(openaiAgent, input({ model: 'strict' }), env());
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT, data: { finishReason: 'stop' } });
    expect((events.at(-1) as any).data.usage).toEqual({ prompt_tokens: 12, completion_tokens: 14, total_tokens: 26 });
    const sent = fake.requests.slice(before).map((r) => r.body);
    expect(sent).toHaveLength(2);
    expect(sent[0].stream_options).toEqual({ include_usage: true });
    expect(sent[1]).not.toHaveProperty('stream_options');
    expect(sent[1]).toMatchObject({ model: 'strict', stream: true });
    // A 400 about something else is not retried.
    const once = fake.requests.length;
    expect((await failure({ model: 'http-400' })).code).toBe('upstream_rejected');
    expect(fake.requests.length - once).toBe(1);
  });

  it('fails clearly when the endpoint cannot be reached', async () => {
    const err = await failure({}, { OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' });
    expect(err.code).toBe('upstream_unreachable');
  });

  it('aborts the upstream request when the run is cancelled', async () => {
    const abort = new AbortController();
    const before = fake.requests.length;
    let deltas = 0;
    for await (const e of openaiAgent.run(input({ model: 'slow-500' }), abort.signal, { env: env() as never, skip: 0 })) {
      if (e.type === 'delta' && ++deltas === 2) abort.abort();
    }
    const req = fake.requests[before]!;
    await req.closed;
    expect(req.closedEarly()).toBe(true);
  });

  it('never lets the API key into an event, an error or a log line', async () => {
    const logged: string[] = [];
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' '))),
    );
    const seen: string[] = [];
    try {
      for (const model of [
        'plain',
        'tool-calls',
        'http-401',
        'http-500',
        'cut',
        'malformed',
        'no-done',
        'error-chunk',
        'stall',
        'no-headers',
        'http-401-echo',
        'http-401-keycode',
      ]) {
        try {
          seen.push(JSON.stringify(await collect(openaiAgent, input({ model }), env({ OPENAI_IDLE_TIMEOUT_MS: '200' }))));
        } catch (err) {
          seen.push(JSON.stringify({ ...(err as AgentError), message: (err as Error).message }));
        }
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const everything = [...seen, ...logged].join('\n');
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain('sk-test');
    expect(seen).toHaveLength(12);
    // The failures really happened (so their messages were searched too).
    expect(seen.filter((s) => s.includes('"code":"upstream_')).length).toBe(10);
  });

  it('is not configured without a key or base URL, and says what to set', () => {
    expect(openaiAgent.notConfigured({} as never)).toMatch(/OPENAI_API_KEY/);
    expect(openaiAgent.notConfigured({ OPENAI_API_KEY: 'k' } as never)).toBeNull();
    expect(openaiAgent.notConfigured({ OPENAI_BASE_URL: 'http://localhost:11434/v1' } as never)).toBeNull();
  });

  it('refuses a base URL or key in the per-run options', () => {
    expect(openaiAgent.options.safeParse({ baseUrl: 'http://evil' }).success).toBe(false);
    expect(openaiAgent.options.safeParse({ apiKey: 'x' }).success).toBe(false);
    expect(openaiAgent.options.safeParse({ model: 'gpt-4o', temperature: 0.5, maxTokens: 10 }).success).toBe(true);
  });
});

describe('openai agent: answers that are not an event stream', () => {
  it('delivers the completion of a server that ignored stream: true as one delta and the result', async () => {
    const events = await collect(openaiAgent, input({ model: 'json-completion' }), env());
    expect(events.map((e) => e.type)).toEqual(['status', 'delta', 'result']);
    expect(events[1]).toEqual({ type: 'delta', messageId: 'm1', text: PLAIN_TEXT });
    expect(events[2]).toEqual({
      type: 'result',
      messageId: 'm1',
      text: PLAIN_TEXT,
      data: { model: 'json-completion', finishReason: 'stop', usage: { prompt_tokens: 12, completion_tokens: 14, total_tokens: 26 } },
    });
  });

  it.each([
    ['json-error', 'upstream_error', /answered with an error instead of a stream \(model_not_found\)/],
    ['html', 'upstream_malformed', /did not answer with an event stream \(check OPENAI_BASE_URL\)/],
    ['json-other', 'upstream_malformed', /did not answer with an event stream \(check OPENAI_BASE_URL\)/],
  ])('a 200 %s fails with %s, not retryable, without echoing the body', async (model, code, message) => {
    const err = await failure({ model });
    expect(err).toMatchObject({ code, retryable: false });
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/does not exist|Welcome|It works/);
  });

  it('still streams SSE sent under the wrong Content-Type', async () => {
    const events = await collect(openaiAgent, input({ model: 'sse-as-text' }), env());
    expect(textOf(events)).toBe(PLAIN_TEXT);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT, data: { finishReason: 'stop' } });
  });
});

describe('openai agent: reasoning and refusals', () => {
  it.each([
    ['reasoning-deepseek', 'Okay, the user asks about resumable streams.', 'A log you can replay.'],
    ['reasoning-openrouter', 'Thinking it over.', 'Replay the log.'],
  ])('%s: thinking shows as a status, its text goes to result.data.reasoning, never into the deltas', async (model, reasoning, text) => {
    const events = await collect(openaiAgent, input({ model }), env());
    const statuses = events.filter((e) => e.type === 'status');
    expect(statuses).toEqual([
      { type: 'status', status: 'generating', message: `Asking ${model}` },
      { type: 'status', status: 'thinking', message: 'Thinking' },
      { type: 'status', status: 'generating', message: 'Writing the answer' },
    ]);
    // Order: thinking before any answer text, generating again right before it.
    const types = events.map((e) => (e.type === 'status' ? e.status : e.type));
    expect(types.slice(0, 4)).toEqual(['generating', 'thinking', 'generating', 'delta']);
    expect(textOf(events)).toBe(text);
    const result = events.at(-1) as Extract<AgentEvent, { type: 'result' }>;
    expect(result.text).toBe(text);
    expect(result.data).toMatchObject({ reasoning, finishReason: 'stop' });
  });

  it('puts a refusal into result.data.refusal', async () => {
    const events = await collect(openaiAgent, input({ model: 'refusal' }), env());
    expect(events.filter((e) => e.type === 'delta')).toHaveLength(0);
    expect(events.at(-1)).toEqual({
      type: 'result',
      messageId: 'm1',
      text: '',
      data: {
        model: 'refusal',
        finishReason: 'stop',
        usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 },
        refusal: "I'm sorry, I can't help with that.",
      },
    });
  });
});

describe('openai agent: wire details', () => {
  it('assembles tool calls whose fragments repeat the name or carry no index', async () => {
    const noIndex = await collect(openaiAgent, input({ model: 'tool-calls-no-index' }), env());
    expect(noIndex.filter((e) => e.type === 'tool')).toEqual([
      { type: 'tool', messageId: 'm1', name: 'get_weather', phase: 'call', input: { city: 'Paris' } },
      { type: 'tool', messageId: 'm1', name: 'get_time', phase: 'call', input: { tz: 'Europe/Paris' } },
    ]);
    expect((noIndex.at(-1) as any).data.toolCalls.map((c: any) => c.id)).toEqual(['call_a1', 'call_a2']);
    const repeated = await collect(openaiAgent, input({ model: 'tool-calls-repeated-name' }), env());
    expect(repeated.filter((e) => e.type === 'tool')).toEqual([
      { type: 'tool', messageId: 'm1', name: 'get_weather', phase: 'call', input: { city: 'Paris' } },
    ]);
  });

  it.each(['done-no-blank', 'done-no-newline'])('completes when the last event (%s) lacks its blank line before the end', async (model) => {
    const events = await collect(openaiAgent, input({ model }), env());
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT, data: { finishReason: 'stop' } });
  });

  it('a body that ends cleanly in the middle of a chunk is incomplete, not malformed', async () => {
    const { error, text } = await untilFailure({ model: 'truncated-eof' });
    expect(error).toMatchObject({ code: 'upstream_incomplete', retryable: true });
    expect(text).toBe('Resumable streams keep');
  });

  it('keeps multi-byte characters split across network writes intact', async () => {
    const events = await collect(openaiAgent, input({ model: 'utf8-split' }), env());
    expect(textOf(events)).toBe(UTF8_PIECES.join(''));
    expect(textOf(events)).not.toContain('\uFFFD');
  });

  it('text that arrived before a failure is delivered before the error, even from the same network chunk', async () => {
    for (const model of ['malformed', 'malformed-burst', 'error-chunk']) {
      const { error, text } = await untilFailure({ model });
      expect(error.code).toMatch(/^upstream_(malformed|error)$/);
      expect(text).toBe('Resumable streams');
    }
    const cut = await untilFailure({ model: 'cut' });
    expect(cut.error.code).toBe('upstream_disconnected');
    expect(cut.text).toBe('Resumable streams keep every');
  });
});

describe('openai agent: upstream error codes', () => {
  it.each([
    ['http-404-model', 'upstream_rejected', false, 'the model endpoint rejected the request (HTTP 404: model_not_found)'],
    ['http-400-context', 'upstream_rejected', false, 'the model endpoint rejected the request (HTTP 400: context_length_exceeded)'],
    ['http-401', 'upstream_auth', false, 'the model endpoint refused the credentials (HTTP 401: invalid_api_key); check the API key'],
    ['http-429', 'upstream_rate_limited', true, 'the model endpoint is rate limiting (HTTP 429: rate_limit_exceeded)'],
    ['http-429-quota', 'upstream_rate_limited', false, 'the model endpoint is rate limiting (HTTP 429: insufficient_quota)'],
    ['http-500', 'upstream_unavailable', true, 'the model endpoint failed (HTTP 500: server_error)'],
    ['http-400-badcode', 'upstream_rejected', false, 'the model endpoint rejected the request (HTTP 400)'],
  ])('%s becomes %s (retryable %s) naming the provider code only', async (model, code, retryable, message) => {
    expect(await failure({ model })).toMatchObject({ code, retryable, message });
  });

  it('never shows a key the server quotes back, in its message or as its code', async () => {
    const echo = await failure({ model: 'http-401-echo' });
    expect(echo.message).toBe('the model endpoint refused the credentials (HTTP 401: invalid_api_key); check the API key');
    const keycode = await failure({ model: 'http-401-keycode' });
    expect(keycode).toMatchObject({
      code: 'upstream_auth',
      message: 'the model endpoint refused the credentials (HTTP 401); check the API key',
    });
    // The key really was in the bodies (a key matching the code pattern, too).
    expect(KEY).toMatch(/^[a-z0-9_.-]{1,64}$/);
    expect(JSON.stringify([echo, keycode, echo.message, keycode.message])).not.toContain(KEY);
  });
});

describe('openai agent: OPENAI_BASE_URL', () => {
  it.each([
    ['not a url at all', 'OPENAI_BASE_URL is not a valid URL'],
    ['ftp://models.example/v1', 'OPENAI_BASE_URL must be an http(s) URL'],
    ['http://admin:hunter2-pass@127.0.0.1:1/v1', 'OPENAI_BASE_URL must not contain credentials; set OPENAI_API_KEY'],
  ])('%s fails with agent_misconfigured, not retryable, without echoing the value', async (base, message) => {
    const before = fake.requests.length;
    const err = await failure({}, { OPENAI_BASE_URL: base });
    expect(err).toMatchObject({ code: 'agent_misconfigured', retryable: false, message });
    expect(err.message).not.toMatch(/hunter2|admin|models\.example|at all/);
    expect(fake.requests.length).toBe(before);
  });

  it('keeps a query string (Azure api-version) after /chat/completions', async () => {
    const before = fake.requests.length;
    const events = await collect(openaiAgent, input(), env({ OPENAI_BASE_URL: `${fake.baseUrl}/?api-version=2024-10-21` }));
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT });
    expect(fake.requests[before]!.path).toBe('/v1/chat/completions?api-version=2024-10-21');
  });

  it('does not follow a redirect, and says to set the final URL', async () => {
    const before = fake.requests.length;
    const err = await failure({}, { OPENAI_BASE_URL: `${fake.url}/redirect/v1` });
    expect(err).toMatchObject({ code: 'upstream_rejected', retryable: false, message: 'OPENAI_BASE_URL redirects; set the final URL' });
    expect(fake.requests.slice(before).map((r) => r.path)).toEqual(['/redirect/v1/chat/completions']);
  });
});
