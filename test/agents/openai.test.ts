// The openai agent against a local server speaking the real wire format.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openaiAgent } from '../../src/agents/openai';
import { AgentError } from '../../src/agents/types';
import type { AgentEvent } from '../../src/events';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai';
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
    const text = events.filter((e) => e.type === 'delta').map((e: any) => e.text).join('');
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

  it('coalesces the deltas that arrive in one network chunk into one event', async () => {
    const burst = await collect(openaiAgent, input({ model: 'burst' }), env());
    const paced = await collect(openaiAgent, input({ model: 'plain' }), env());
    expect(burst.filter((e) => e.type === 'delta')).toHaveLength(1);
    expect(paced.filter((e) => e.type === 'delta').length).toBeGreaterThan(5);
    expect((burst.at(-1) as any).text).toBe((paced.at(-1) as any).text);
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
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
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
      for (const model of ['plain', 'tool-calls', 'http-401', 'http-500', 'cut', 'malformed', 'no-done', 'error-chunk', 'stall', 'no-headers']) {
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
    expect(seen).toHaveLength(10);
    // The failures really happened (so their messages were searched too).
    expect(seen.filter((s) => s.includes('"code":"upstream_')).length).toBe(8);
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
