// The anthropic agent against a local server speaking the Messages streaming wire format.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ANTHROPIC_DEFAULT_MAX_TOKENS,
  ANTHROPIC_DEFAULT_MODEL,
  anthropicAgent,
  conversation,
  messagesUrl,
} from '../../src/agents/anthropic/anthropic';
import { AgentError } from '../../src/agents/types';
import type { AgentEvent } from '../../src/events';
import { PLAIN_TEXT, startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic';
import { agentContractTests, collect } from './contract';

const KEY = 'sk-ant-api03-test-very-secret-key-0123456789';
let fake: FakeAnthropic;
beforeAll(async () => {
  fake = await startFakeAnthropic();
});
afterAll(async () => {
  await fake?.close();
});

const env = (extra: Record<string, string | undefined> = {}) => ({
  ANTHROPIC_BASE_URL: fake.url,
  ANTHROPIC_API_KEY: KEY,
  ANTHROPIC_MODEL: 'plain',
  ...extra,
});
const input = (options: Record<string, unknown> = {}, messages: any[] = []) => ({
  requestId: 'r1',
  query: 'What is a resumable stream?',
  messages,
  options,
});
const textOf = (events: AgentEvent[]) => events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
type Result = Extract<AgentEvent, { type: 'result' }>;

/** The events a run yielded before it failed, and the failure. */
async function untilFailure(options: Record<string, unknown>, extraEnv: Record<string, string | undefined> = {}) {
  const events: AgentEvent[] = [];
  try {
    for await (const e of anthropicAgent.run(input(options), new AbortController().signal, { env: env(extraEnv) as never, skip: 0 })) {
      if (e.type !== 'checkpoint') events.push(e);
    }
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return { events, error: err as AgentError, text: textOf(events) };
  }
  throw new Error('expected the run to fail');
}
const failure = async (options: Record<string, unknown>, extraEnv: Record<string, string | undefined> = {}) =>
  (await untilFailure(options, extraEnv)).error;

agentContractTests('anthropic', () => ({
  agent: anthropicAgent,
  env: env(),
  input: input(),
  longInput: input({ model: 'slow-200' }),
}));

describe('anthropic agent: the request', () => {
  it('POSTs /v1/messages with x-api-key, anthropic-version, max_tokens, and system messages as the top-level system', async () => {
    const before = fake.requests.length;
    const history = [
      { role: 'system', content: 'You answer questions about our docs.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'system', content: 'Be brief.' },
    ];
    await collect(anthropicAgent, input({ temperature: 0.2, maxTokens: 50 }, history), env());
    const req = fake.requests[before]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/messages');
    expect(req.headers['x-api-key']).toBe(KEY);
    expect(req.headers['anthropic-version']).toBe('2023-06-01');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBeUndefined();
    expect(req.body).toEqual({
      model: 'plain',
      max_tokens: 50,
      system: 'You answer questions about our docs.\n\nBe brief.',
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'What is a resumable stream?' },
      ],
      stream: true,
      temperature: 0.2,
    });
  });

  it('defaults max_tokens (the API requires it) and the model, and sends no system without system messages', async () => {
    const before = fake.requests.length;
    await collect(anthropicAgent, input(), env({ ANTHROPIC_MODEL: undefined }));
    const body = fake.requests[before]!.body;
    expect(body).toMatchObject({ model: ANTHROPIC_DEFAULT_MODEL, max_tokens: ANTHROPIC_DEFAULT_MAX_TOKENS, stream: true });
    expect(body).not.toHaveProperty('system');
    expect(body).not.toHaveProperty('temperature');
    expect(body).not.toHaveProperty('tools');
  });

  it('leaves out empty messages, which the API refuses', () => {
    expect(
      conversation([
        { role: 'user', content: '' },
        { role: 'system', content: '' },
        { role: 'user', content: 'q' },
      ]),
    ).toEqual({ messages: [{ role: 'user', content: 'q' }] });
  });

  it('offers client tools in Anthropic’s shape and validates them', async () => {
    const before = fake.requests.length;
    const tools = [
      {
        name: 'get_weather',
        description: 'Weather by city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    ];
    await collect(anthropicAgent, input(anthropicAgent.options.parse({ model: 'tool-use', tools })), env());
    expect(fake.requests[before]!.body.tools).toEqual(tools);
    const bad = (t: unknown) => anthropicAgent.options.safeParse({ tools: [t] }).success;
    expect(bad({ name: 'rm -rf /', input_schema: { type: 'object' } })).toBe(false);
    expect(bad({ name: 'x' })).toBe(false); // input_schema is required
    expect(bad({ name: 'x', input_schema: { type: 'string' } })).toBe(false);
    expect(bad({ type: 'web_search_20250305', name: 'web_search' })).toBe(false); // server tools are the deployer's business
    expect(bad({ type: 'function', function: { name: 'x' } })).toBe(false); // OpenAI's shape
    expect(anthropicAgent.options.safeParse({ tools: Array.from({ length: 33 }, () => tools[0]) }).success).toBe(false);
  });

  it('validates options: temperature 0..1, no base URL or key from a client', () => {
    const ok = (o: object) => anthropicAgent.options.safeParse(o).success;
    expect(ok({ model: 'claude-haiku-4-5', temperature: 1, maxTokens: 10 })).toBe(true);
    expect(ok({ temperature: 1.5 })).toBe(false);
    expect(ok({ maxTokens: 0 })).toBe(false);
    expect(ok({ baseUrl: 'http://evil' })).toBe(false);
    expect(ok({ apiKey: 'x' })).toBe(false);
  });
});

describe('anthropic agent: the stream', () => {
  it('plain text: text_delta events become deltas; stop_reason and merged usage go into the result', async () => {
    const events = await collect(anthropicAgent, input(), env());
    expect(events[0]).toEqual({ type: 'status', status: 'generating', message: 'Asking plain' });
    expect(textOf(events)).toBe(PLAIN_TEXT);
    expect(events.at(-1)).toEqual({
      type: 'result',
      messageId: 'm1',
      text: PLAIN_TEXT,
      // message_start's counters, overridden by message_delta's cumulative ones; only numbers.
      data: {
        model: 'plain',
        finishReason: 'end_turn',
        usage: { input_tokens: 14, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 16 },
      },
    });
  });

  it('thinking: a thinking status, the thoughts only in result.data.reasoning, signature and redacted blocks dropped', async () => {
    const events = await collect(anthropicAgent, input({ model: 'thinking' }), env());
    const types = events.map((e) => (e.type === 'status' ? e.status : e.type));
    expect(types.slice(0, 4)).toEqual(['generating', 'thinking', 'generating', 'delta']);
    expect(events.filter((e) => e.type === 'status')).toEqual([
      { type: 'status', status: 'generating', message: 'Asking thinking' },
      { type: 'status', status: 'thinking', message: 'Thinking' },
      { type: 'status', status: 'generating', message: 'Writing the answer' },
    ]);
    expect(textOf(events)).toBe('A log you can replay.');
    const result = events.at(-1) as Result;
    expect(result.data).toEqual({
      model: 'thinking',
      finishReason: 'end_turn',
      usage: { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 58 },
      reasoning: 'The user asks about resumable streams. Keep it short.',
    });
    expect(JSON.stringify(events)).not.toMatch(/EqQB|EmwK/); // neither the signature nor the redacted data
  });

  it.each(['tool-use', 'tool-use-split'])('%s: tool_use blocks become tool calls with their input_json_delta assembled', async (model) => {
    const events = await collect(anthropicAgent, input({ model }), env());
    expect(textOf(events)).toBe("I'll look up the weather and the time in Paris.");
    expect(events.filter((e) => e.type === 'tool')).toEqual([
      { type: 'tool', messageId: 'm1', name: 'get_weather', phase: 'call', input: { city: 'Paris', unit: 'c' } },
      { type: 'tool', messageId: 'm1', name: 'get_time', phase: 'call', input: { tz: 'Europe/Paris' } },
      { type: 'tool', messageId: 'm1', name: 'list_cities', phase: 'call', input: {} },
    ]);
    const result = events.at(-1) as Result;
    expect(result.text).toBe("I'll look up the weather and the time in Paris.");
    expect(result.data).toMatchObject({ finishReason: 'tool_use', usage: { input_tokens: 472, output_tokens: 89 } });
    expect((result.data as any).toolCalls).toEqual([
      { id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', input: { city: 'Paris', unit: 'c' } },
      { id: 'toolu_01WuG2nFqnmnqgJ8ghb9nZWr', name: 'get_time', input: { tz: 'Europe/Paris' } },
      { id: 'toolu_01NoArgs7zWkLq3LKt4mcCjg', name: 'list_cities', input: {} },
    ]);
    // The tool events come after the text, right before the result.
    expect(events.slice(-4).map((e) => e.type)).toEqual(['tool', 'tool', 'tool', 'result']);
  });

  it('ping events (before, between and after everything) change nothing', async () => {
    const events = await collect(anthropicAgent, input({ model: 'pings' }), env());
    expect(textOf(events)).toBe(PLAIN_TEXT);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT, data: { finishReason: 'end_turn' } });
  });

  it('skips event and delta types it does not know', async () => {
    const events = await collect(anthropicAgent, input({ model: 'unknown-events' }), env());
    expect(textOf(events)).toBe(PLAIN_TEXT);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT });
  });

  it('parses events split at awkward byte boundaries', async () => {
    const events = await collect(anthropicAgent, input({ model: 'split' }), env());
    expect(textOf(events)).toBe(PLAIN_TEXT);
    expect((events.at(-1) as Result).text).toBe(PLAIN_TEXT);
  });

  it('coalesces deltas that arrive in one network chunk or within 16 ms, as the openai agent does', async () => {
    const burst = await collect(anthropicAgent, input({ model: 'burst' }), env());
    expect(burst.filter((e) => e.type === 'delta')).toHaveLength(1);
    const paced = await collect(anthropicAgent, input(), env());
    const deltas = paced.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeLessThanOrEqual(5);
    expect(deltas[0]).toMatchObject({ text: 'Resumable' }); // the first piece after a quiet spell is not held back
  });

  it('completes at message_stop even when the server keeps the connection open, and hangs up', async () => {
    const before = fake.requests.length;
    const started = Date.now();
    const events = await collect(anthropicAgent, input({ model: 'stop-open' }), env({ ANTHROPIC_IDLE_TIMEOUT_MS: '30000' }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: PLAIN_TEXT });
    const upstream = fake.requests[before]!;
    await upstream.closed;
    expect(upstream.closedEarly()).toBe(true);
  });
});

describe('anthropic agent: failures', () => {
  it.each([
    ['http-400', 'upstream_rejected', false, 'Anthropic rejected the request (HTTP 400: invalid_request_error)'],
    ['http-401', 'upstream_auth', false, 'Anthropic refused the credentials (HTTP 401: authentication_error); check the API key'],
    ['http-402', 'upstream_rejected', false, 'Anthropic rejected the request (HTTP 402: billing_error)'],
    ['http-403', 'upstream_auth', false, 'Anthropic refused the credentials (HTTP 403: permission_error); check the API key'],
    ['http-404', 'upstream_rejected', false, 'Anthropic rejected the request (HTTP 404: not_found_error)'],
    ['http-413', 'upstream_rejected', false, 'Anthropic rejected the request (HTTP 413: request_too_large)'],
    ['http-413-html', 'upstream_rejected', false, 'Anthropic rejected the request (HTTP 413)'],
    ['http-429', 'upstream_rate_limited', true, 'Anthropic is rate limiting (HTTP 429: rate_limit_error)'],
    ['http-500', 'upstream_unavailable', true, 'Anthropic failed (HTTP 500: api_error)'],
    ['http-504', 'upstream_unavailable', true, 'Anthropic failed (HTTP 504: timeout_error)'],
    ['http-529', 'upstream_unavailable', true, 'Anthropic failed (HTTP 529: overloaded_error)'],
  ])('%s becomes %s (retryable %s), naming the error type only', async (model, code, retryable, message) => {
    const { error, events } = await untilFailure({ model });
    expect(error).toMatchObject({ code, retryable, message });
    expect(events.filter((e) => e.type === 'delta')).toHaveLength(0);
  });

  it.each([
    ['overloaded_error', 'upstream_unavailable', true],
    ['api_error', 'upstream_unavailable', true],
    ['timeout_error', 'upstream_unavailable', true],
    ['rate_limit_error', 'upstream_rate_limited', true],
    ['invalid_request_error', 'upstream_rejected', false],
    ['request_too_large', 'upstream_rejected', false],
    ['authentication_error', 'upstream_auth', false],
    ['permission_error', 'upstream_auth', false],
    ['not_found_error', 'upstream_rejected', false],
    ['billing_error', 'upstream_rejected', false],
    ['brand_new_error', 'upstream_error', true],
  ])('an error event mid-stream of type %s becomes %s (retryable %s), after the text before it', async (type, code, retryable) => {
    const { error, text } = await untilFailure({ model: `error-${type}` });
    expect(error).toMatchObject({ code, retryable, message: `Anthropic reported an error mid-stream (${type})` });
    expect(text).toBe('Resumable streams');
  });

  it('the overloaded_error fixture, byte for byte as the docs show it', async () => {
    const { error, events } = await untilFailure({ model: 'error-overloaded' });
    expect(error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(events.some((e) => e.type === 'result')).toBe(false);
  });

  it.each([
    ['cut', 'upstream_disconnected', true, 'Resumable streams keep'],
    ['truncated-eof', 'upstream_incomplete', true, 'Resumable streams keep'],
    ['no-stop', 'upstream_incomplete', true, PLAIN_TEXT],
    ['malformed', 'upstream_malformed', true, 'Resumable streams'],
  ])('%s fails with %s (retryable %s), keeping the text that arrived', async (model, code, retryable, text) => {
    const failed = await untilFailure({ model });
    expect(failed.error).toMatchObject({ code, retryable });
    expect(failed.text).toBe(text);
  });

  it('a connection that breaks mid-answer is upstream_disconnected', async () => {
    const { error } = await untilFailure({ model: 'cut' });
    expect(error.message).toBe('the connection to the model broke mid-answer');
  });

  it.each(['html', 'json'])(
    'a 200 that is not an event stream (%s) is upstream_malformed, not retryable, naming ANTHROPIC_BASE_URL',
    async (model) => {
      const error = await failure({ model });
      expect(error).toMatchObject({
        code: 'upstream_malformed',
        retryable: false,
        message: 'Anthropic did not answer with an event stream (check ANTHROPIC_BASE_URL)',
      });
    },
  );

  it('fails a stalled stream after the idle timeout', async () => {
    const started = Date.now();
    const error = await failure({ model: 'stall' }, { ANTHROPIC_IDLE_TIMEOUT_MS: '300' });
    expect(error).toMatchObject({ code: 'upstream_timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fails a server that never answers after the idle timeout, and closes the request', async () => {
    const before = fake.requests.length;
    const error = await failure({ model: 'no-headers' }, { ANTHROPIC_IDLE_TIMEOUT_MS: '300' });
    expect(error).toMatchObject({ code: 'upstream_timeout', retryable: true, message: 'Anthropic did not answer within 300 ms' });
    const upstream = fake.requests[before]!;
    await upstream.closed;
    expect(upstream.closedEarly()).toBe(true);
  });

  it('fails clearly when the endpoint cannot be reached', async () => {
    expect(await failure({}, { ANTHROPIC_BASE_URL: 'http://127.0.0.1:1' })).toMatchObject({
      code: 'upstream_unreachable',
      retryable: true,
    });
  });

  it('without ANTHROPIC_API_KEY: not configured (the start is 400 agent_not_configured), and a run fails the same way without asking', async () => {
    expect(anthropicAgent.notConfigured({} as never)).toBe('set ANTHROPIC_API_KEY (wrangler secret put ANTHROPIC_API_KEY)');
    expect(anthropicAgent.notConfigured({ ANTHROPIC_BASE_URL: fake.url } as never)).toMatch(/ANTHROPIC_API_KEY/);
    expect(anthropicAgent.notConfigured({ ANTHROPIC_API_KEY: 'k' } as never)).toBeNull();
    const before = fake.requests.length;
    const error = await failure({}, { ANTHROPIC_API_KEY: undefined });
    expect(error).toMatchObject({ code: 'agent_not_configured', retryable: false });
    expect(fake.requests.length).toBe(before);
  });

  it('the fake refuses a request without a key, as the API does (so the agent is tested against that too)', async () => {
    const res = await fetch(`${fake.url}/v1/messages`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });
});

describe('anthropic agent: cancel and secrets', () => {
  it('aborts the upstream request when the run is cancelled', async () => {
    const abort = new AbortController();
    const before = fake.requests.length;
    let deltas = 0;
    for await (const e of anthropicAgent.run(input({ model: 'slow-500' }), abort.signal, { env: env() as never, skip: 0 })) {
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
    const models = [
      'plain',
      'thinking',
      'tool-use',
      'http-401',
      'http-401-echo',
      'http-529',
      'error-overloaded_error',
      'cut',
      'malformed',
      'no-stop',
      'stall',
      'no-headers',
    ];
    try {
      for (const model of models) {
        try {
          seen.push(JSON.stringify(await collect(anthropicAgent, input({ model }), env({ ANTHROPIC_IDLE_TIMEOUT_MS: '200' }))));
        } catch (err) {
          seen.push(JSON.stringify({ ...(err as AgentError), message: (err as Error).message }));
        }
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const everything = [...seen, ...logged].join('\n');
    expect(everything).not.toContain(KEY);
    expect(everything).not.toContain('sk-ant');
    expect(seen.filter((s) => s.includes('"code":"upstream_')).length).toBe(9);
  });

  it('shows no error type that quotes the key', async () => {
    // A key that happens to look like an error type is not shown as one.
    const error = await failure({ model: 'error-sk_ant_lookalike' }, { ANTHROPIC_API_KEY: 'sk_ant_lookalike' });
    expect(error).toMatchObject({ code: 'upstream_error', message: 'Anthropic reported an error mid-stream' });
  });
});

describe('anthropic agent: ANTHROPIC_BASE_URL', () => {
  it('appends /v1/messages to the root, keeping a query string', () => {
    expect(messagesUrl(undefined).href).toBe('https://api.anthropic.com/v1/messages');
    expect(messagesUrl('https://gateway.example/anthropic/').href).toBe('https://gateway.example/anthropic/v1/messages');
    expect(messagesUrl('https://gateway.example/x?team=a#frag').href).toBe('https://gateway.example/x/v1/messages?team=a');
  });

  it.each([
    ['not a url at all', 'ANTHROPIC_BASE_URL is not a valid URL'],
    ['ftp://models.example', 'ANTHROPIC_BASE_URL must be an http(s) URL'],
    ['http://admin:hunter2-pass@127.0.0.1:1', 'ANTHROPIC_BASE_URL must not contain credentials; set ANTHROPIC_API_KEY'],
  ])('%s fails with agent_misconfigured, not retryable, without echoing the value', async (base, message) => {
    const before = fake.requests.length;
    expect(anthropicAgent.notConfigured({ ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: base } as never)).toBe(message);
    const error = await failure({}, { ANTHROPIC_BASE_URL: base });
    expect(error).toMatchObject({ code: 'agent_misconfigured', retryable: false, message });
    expect(fake.requests.length).toBe(before);
  });

  it('does not follow a redirect, and says to set the final URL', async () => {
    const before = fake.requests.length;
    const error = await failure({}, { ANTHROPIC_BASE_URL: `${fake.url}/redirect` });
    expect(error).toMatchObject({
      code: 'upstream_rejected',
      retryable: false,
      message: 'ANTHROPIC_BASE_URL redirects; set the final URL',
    });
    expect(fake.requests.slice(before).map((r) => r.path)).toEqual(['/redirect/v1/messages']);
  });
});
