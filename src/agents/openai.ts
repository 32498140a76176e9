/**
 * `openai`: any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure,
 * Groq, Together, vLLM, llama.cpp server, Ollama, LM Studio), streamed.
 *
 * Configured by the deployment only: OPENAI_BASE_URL, OPENAI_API_KEY
 * (secret), OPENAI_MODEL. A client may choose model, temperature and max
 * tokens; never where the request goes or with which key.
 */
import { z } from 'zod';
import type { AppEnv } from '../env';
import { chatMessages, readChatStream } from './chat-stream';
import { firstByteGuard, idleMsFrom } from './upstream-timeouts';
import { AgentError, type Agent, type AgentContext, type AgentInput } from './types';
import { upstreamHttpError } from './upstream-sse';

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const OPENAI_DEFAULT_MODEL = 'gpt-4o-mini';
/**
 * No byte from the model for this long fails the run. Generous: reasoning
 * models can think for a while before their first token. OPENAI_IDLE_TIMEOUT_MS overrides.
 */
export const OPENAI_IDLE_TIMEOUT_MS = 60_000;

/** Tool definitions a run may offer the model; OpenAI's own limit is 128. */
const MAX_TOOLS = 32;

/**
 * A function the model may call. Safe from a client: nothing runs here; the
 * model's calls come back as `tool` events for the client to act on.
 */
const ToolDefinition = z
  .object({
    type: z.literal('function'),
    function: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -, at most 64'),
        description: z.string().max(1024).optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
      })
      .strict(),
  })
  .strict();

export const OpenAIOptions = z
  .object({
    model: z.string().min(1).max(200).optional(),
    temperature: z.number().min(0).max(2).optional(),
    maxTokens: z.number().int().min(1).max(1_000_000).optional(),
    tools: z.array(ToolDefinition).min(1).max(MAX_TOOLS).optional(),
  })
  .strict();
export type OpenAIOptions = z.infer<typeof OpenAIOptions>;

export const openaiAgent: Agent<OpenAIOptions> = {
  name: 'openai',
  description: 'An OpenAI-compatible Chat Completions model, streamed.',
  options: OpenAIOptions,
  deterministic: false,
  notConfigured(env) {
    if (env.OPENAI_API_KEY || env.OPENAI_BASE_URL) return null;
    return 'set OPENAI_API_KEY (wrangler secret put OPENAI_API_KEY), or OPENAI_BASE_URL for a local server that needs no key';
  },
  async *run(input: AgentInput<OpenAIOptions>, signal: AbortSignal, ctx: AgentContext) {
    const { env } = ctx;
    const model = input.options.model ?? env.OPENAI_MODEL ?? OPENAI_DEFAULT_MODEL;
    const body: Record<string, unknown> = {
      model,
      messages: chatMessages(input),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (input.options.temperature !== undefined) body.temperature = input.options.temperature;
    if (input.options.maxTokens !== undefined) body.max_tokens = input.options.maxTokens;
    if (input.options.tools !== undefined) body.tools = input.options.tools;

    yield { type: 'status', status: 'generating', message: `Asking ${model}` };
    const idleMs = idleMsFrom(env.OPENAI_IDLE_TIMEOUT_MS, OPENAI_IDLE_TIMEOUT_MS);
    const res = await requestCompletion(env, body, signal, idleMs);
    if (!res) return; // cancelled before the model answered
    yield* readChatStream(res.body!, signal, {
      provider: 'model',
      model,
      idleMs,
      parts: (chunk) => {
        const choice = chunk?.choices?.[0];
        return {
          content: choice?.delta?.content,
          toolCalls: choice?.delta?.tool_calls,
          finishReason: choice?.finish_reason,
          usage: chunk?.usage,
          error: Boolean(chunk?.error),
        };
      },
    });
  },
};


async function requestCompletion(env: AppEnv, body: unknown, signal: AbortSignal, idleMs: number): Promise<Response | null> {
  const base = (env.OPENAI_BASE_URL || OPENAI_DEFAULT_BASE_URL).replace(/\/+$/, '');
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  if (env.OPENAI_API_KEY) headers.Authorization = `Bearer ${env.OPENAI_API_KEY}`;
  const guard = firstByteGuard(signal, idleMs);
  let res: Response;
  try {
    res = await fetch(`${base}/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body), signal: guard.signal });
  } catch {
    if (signal.aborted) return null;
    if (guard.timedOut()) throw new AgentError('upstream_timeout', `the model did not answer within ${idleMs} ms`, true);
    // Never echo the fetch error: it can name the URL; the key is in headers only, but be strict.
    throw new AgentError('upstream_unreachable', 'could not reach the model endpoint (OPENAI_BASE_URL)', true);
  } finally {
    guard.answered();
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw upstreamHttpError(res.status, 'the model endpoint');
  }
  if (!res.body) throw new AgentError('upstream_malformed', 'the model endpoint answered without a body', true);
  return res;
}
