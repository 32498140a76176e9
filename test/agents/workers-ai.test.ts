// Workers AI cannot be reached from here (it runs on Cloudflare's network):
// the binding is stood in for by an object whose `run` returns what the real
// binding returns with `stream: true`, a stream of SSE bytes.
import { describe, expect, it } from 'vitest';
import { WORKERS_AI_DEFAULT_MODEL, workersAiAgent } from '../../src/agents/workers-ai/workers-ai';
import { AgentError } from '../../src/agents/types';
import { agentContractTests, collect } from './contract';

function sseStream(frames: string[], opts: { gapMs?: number; signal?: AbortSignal } = {}): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream({
    async pull(controller) {
      if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      if (i >= frames.length) return controller.close();
      controller.enqueue(enc.encode(frames[i++]));
    },
  });
}

const legacy = (words: string[]) => [
  ...words.map((w) => `data: ${JSON.stringify({ response: w, p: 'abcdef' })}\n\n`),
  `data: ${JSON.stringify({ response: '', usage: { prompt_tokens: 9, completion_tokens: words.length, total_tokens: 9 + words.length } })}\n\n`,
  'data: [DONE]\n\n',
];

function fakeAi(frames: string[], gapMs = 0) {
  const calls: { model: string; inputs: any; options: any }[] = [];
  return {
    calls,
    AI: {
      run: async (model: string, inputs: any, options: any) => {
        calls.push({ model, inputs, options });
        return sseStream(frames, { gapMs });
      },
    },
  };
}

const input = (options = {}) => ({
  requestId: 'r',
  query: 'Hello?',
  messages: [{ role: 'system' as const, content: 'Be kind.' }],
  options,
});

// The shared agent contract, with the stand-in binding (fresh streams per call).
agentContractTests('workers-ai (stand-in binding)', () => {
  const AI = {
    run: async (_model: string, inputs: any) =>
      sseStream(inputs.max_tokens === 1000 ? legacy(Array.from({ length: 1000 }, (_, i) => `w${i} `)) : legacy(['Hi', ' there', '!']), {
        gapMs: inputs.max_tokens === 1000 ? 5 : 0,
      }),
  };
  return { agent: workersAiAgent, env: { AI }, input: input(), longInput: input({ maxTokens: 1000 }) };
});

describe('workers-ai agent', () => {
  it('streams the binding’s `response` tokens as deltas and usage into the result', async () => {
    const { AI, calls } = fakeAi(legacy(['Hi', ' there', '!']));
    const events = await collect(workersAiAgent, input({ temperature: 0.3 }), { AI });
    expect(
      events
        .filter((e) => e.type === 'delta')
        .map((e: any) => e.text)
        .join(''),
    ).toBe('Hi there!');
    expect(events.at(-1)).toMatchObject({
      type: 'result',
      text: 'Hi there!',
      data: { model: WORKERS_AI_DEFAULT_MODEL, usage: { completion_tokens: 3 } },
    });
    expect(calls[0]).toMatchObject({
      model: WORKERS_AI_DEFAULT_MODEL,
      inputs: {
        stream: true,
        temperature: 0.3,
        messages: [
          { role: 'system', content: 'Be kind.' },
          { role: 'user', content: 'Hello?' },
        ],
      },
    });
    expect(calls[0]!.options.signal).toBeInstanceOf(AbortSignal);
  });

  it('reads OpenAI-style chunks from newer models too, and takes the model from config or options', async () => {
    const frames = ['Bon', 'jour']
      .map((w) => `data: ${JSON.stringify({ choices: [{ delta: { content: w } }] })}\n\n`)
      .concat('data: [DONE]\n\n');
    const { AI, calls } = fakeAi(frames);
    const events = await collect(workersAiAgent, input(), { AI, WORKERS_AI_MODEL: '@cf/openai/gpt-oss-20b' });
    expect((events.at(-1) as any).text).toBe('Bonjour');
    expect(calls[0]!.model).toBe('@cf/openai/gpt-oss-20b');
    await collect(workersAiAgent, input({ model: '@cf/qwen/qwen3-30b-a3b-fp8' }), { AI });
    expect(calls[1]!.model).toBe('@cf/qwen/qwen3-30b-a3b-fp8');
  });

  it('takes `response` only when it is not empty, else the OpenAI-style delta', async () => {
    // Newer models put an empty `response` beside `choices`.
    const frames = ['Bon', 'jour']
      .map((w) => `data: ${JSON.stringify({ response: '', choices: [{ index: 0, delta: { content: w }, finish_reason: null }] })}\n\n`)
      .concat(
        `data: ${JSON.stringify({ response: '', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
        'data: [DONE]\n\n',
      );
    const events = await collect(workersAiAgent, input(), fakeAi(frames));
    expect(events.at(-1)).toMatchObject({ type: 'result', text: 'Bonjour', data: { finishReason: 'stop' } });
  });

  it('shows reasoning_content as a thinking status and puts it into the result, not the text', async () => {
    const chunk = (delta: object) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const frames = [
      chunk({ role: 'assistant', reasoning_content: 'Hmm,' }),
      chunk({ reasoning_content: ' a greeting.' }),
      chunk({ content: 'Hello' }),
      chunk({ content: '!' }),
      'data: [DONE]\n\n',
    ];
    const events = await collect(workersAiAgent, input(), fakeAi(frames));
    expect(events.filter((e) => e.type === 'status').map((e: any) => e.status)).toEqual(['generating', 'thinking', 'generating']);
    expect(
      events
        .filter((e) => e.type === 'delta')
        .map((e: any) => e.text)
        .join(''),
    ).toBe('Hello!');
    expect(events.at(-1)).toMatchObject({ type: 'result', text: 'Hello!', data: { reasoning: 'Hmm, a greeting.' } });
  });

  it('fails with upstream_error on an error object inside the stream, keeping the text before it', async () => {
    const frames = [
      ...legacy(['Hi', ' there']).slice(0, 2),
      `data: ${JSON.stringify({ error: { code: 'capacity_exceeded', message: 'internal details' } })}\n\n`,
    ];
    const events: any[] = [];
    const err = await (async () => {
      for await (const e of workersAiAgent.run(input(), new AbortController().signal, { env: fakeAi(frames) as never, skip: 0 }))
        events.push(e);
    })().catch((e) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code: 'upstream_error', message: 'Workers AI reported an error mid-stream (capacity_exceeded)' });
    expect(
      events
        .filter((e) => e.type === 'delta')
        .map((e) => e.text)
        .join(''),
    ).toBe('Hi there');
  });

  it('fails honestly on a stream without [DONE] or with a malformed chunk', async () => {
    for (const [frames, code] of [
      [legacy(['a', 'b']).slice(0, -1), 'upstream_incomplete'],
      [['data: {"response":\n\n'], 'upstream_malformed'],
    ] as const) {
      const { AI } = fakeAi([...frames]);
      const err = await collect(workersAiAgent, input(), { AI }).catch((e) => e);
      expect(err).toBeInstanceOf(AgentError);
      expect(err.code).toBe(code);
    }
  });

  it('stops reading when cancelled', async () => {
    const { AI } = fakeAi(legacy(Array.from({ length: 500 }, (_, i) => `t${i} `)), 5);
    const abort = new AbortController();
    let deltas = 0;
    for await (const e of workersAiAgent.run(input(), abort.signal, { env: { AI } as never, skip: 0 })) {
      if (e.type === 'delta' && ++deltas === 3) abort.abort();
    }
    expect(deltas).toBe(3);
  });

  it('fails with upstream_timeout when the binding never answers or goes silent, and aborts the call', async () => {
    let seen: AbortSignal | undefined;
    const hanging = { run: (_m: string, _i: unknown, o: { signal: AbortSignal }) => ((seen = o.signal), new Promise(() => {})) };
    const started = Date.now();
    const err = await collect(workersAiAgent, input(), { AI: hanging, WORKERS_AI_IDLE_TIMEOUT_MS: '200' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'upstream_timeout', retryable: true });
    expect(seen!.aborted).toBe(true);
    // A stream that starts, then says nothing more.
    const silent = { run: async () => new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(legacy(['a'])[0]!)) }) };
    const err2 = await collect(workersAiAgent, input(), { AI: silent, WORKERS_AI_IDLE_TIMEOUT_MS: '200' }).catch((e) => e);
    expect(err2).toMatchObject({ code: 'upstream_timeout', retryable: true });
    // A stream that comes only after the timeout is cancelled, not left open.
    let lateCancelled = false;
    const late = new ReadableStream({ cancel: () => void (lateCancelled = true) });
    const slow = { run: () => new Promise((r) => setTimeout(() => r(late), 400)) };
    expect(await collect(workersAiAgent, input(), { AI: slow, WORKERS_AI_IDLE_TIMEOUT_MS: '100' }).catch((e) => e)).toMatchObject({
      code: 'upstream_timeout',
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(lateCancelled).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each([
    ['5007: No such model @cf/nope/nope or task', 'upstream_rejected', false],
    ['AiError: 3040: Capacity temporarily exceeded, please try again.', 'upstream_rate_limited', true],
    ['3036: You have used up your daily free allocation of 10,000 neurons.', 'upstream_rate_limited', false],
    ['5016: User has not agreed to Llama3.2 model terms', 'upstream_auth', false],
    ['3007: Request timeout', 'upstream_unavailable', true],
    ['network connection lost', 'upstream_unavailable', true],
  ])('a binding error "%s" becomes %s (retryable: %s)', async (message, code, retryable) => {
    const failing = { run: async () => Promise.reject(new Error(message)) };
    const err = await collect(workersAiAgent, input(), { AI: failing }).catch((e) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code, retryable });
  });

  it('refuses model names that are not Workers AI models, and says what to configure', () => {
    expect(workersAiAgent.options.safeParse({ model: 'gpt-4o' }).success).toBe(false);
    expect(workersAiAgent.notConfigured({} as never)).toMatch(/\[ai\] binding = "AI"/);
  });
});
