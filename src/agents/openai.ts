/**
 * `openai`: any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure,
 * Groq, Together, vLLM, llama.cpp server, Ollama, LM Studio), streamed.
 *
 * Configured by the deployment only: OPENAI_BASE_URL, OPENAI_API_KEY
 * (secret), OPENAI_MODEL. A client may choose model, temperature and max
 * tokens; never where the request goes or with which key.
 */
import { z } from 'zod';
import type { AgentEvent } from '../events';
import type { AppEnv } from '../env';
import { chatMessages, toolCallsCollector, usageData } from './chat-stream';
import { AgentError, type Agent, type AgentContext, type AgentInput } from './types';
import { parseChunk, sseDataBatches, upstreamHttpError } from './upstream-sse';

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const OPENAI_DEFAULT_MODEL = 'gpt-4o-mini';
/**
 * No byte from the model for this long fails the run. Generous: reasoning
 * models can think for a while before their first token. OPENAI_IDLE_TIMEOUT_MS overrides.
 */
export const OPENAI_IDLE_TIMEOUT_MS = 60_000;

export const OpenAIOptions = z
  .object({
    model: z.string().min(1).max(200).optional(),
    temperature: z.number().min(0).max(2).optional(),
    maxTokens: z.number().int().min(1).max(1_000_000).optional(),
  })
  .strict();
export type OpenAIOptions = z.infer<typeof OpenAIOptions>;

const MESSAGE_ID = 'm1';

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

    yield { type: 'status', status: 'generating', message: `Asking ${model}` };
    const res = await requestCompletion(env, body, signal);
    if (!res) return; // cancelled before the model answered
    yield* readCompletion(res, signal, idleTimeout(env), model);
  },
};

function idleTimeout(env: AppEnv): number {
  const configured = Number(env.OPENAI_IDLE_TIMEOUT_MS);
  return Number.isInteger(configured) && configured > 0 ? configured : OPENAI_IDLE_TIMEOUT_MS;
}

async function requestCompletion(env: AppEnv, body: unknown, signal: AbortSignal): Promise<Response | null> {
  const base = (env.OPENAI_BASE_URL || OPENAI_DEFAULT_BASE_URL).replace(/\/+$/, '');
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  if (env.OPENAI_API_KEY) headers.Authorization = `Bearer ${env.OPENAI_API_KEY}`;
  let res: Response;
  try {
    res = await fetch(`${base}/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body), signal });
  } catch {
    if (signal.aborted) return null;
    // Never echo the fetch error: it can name the URL; the key is in headers only, but be strict.
    throw new AgentError('upstream_unreachable', 'could not reach the model endpoint (OPENAI_BASE_URL)', true);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw upstreamHttpError(res.status, 'the model endpoint');
  }
  if (!res.body) throw new AgentError('upstream_malformed', 'the model endpoint answered without a body', true);
  return res;
}

/** Map the streamed chunks to events; one `delta` per network chunk, so storage sees few, larger events. */
async function* readCompletion(res: Response, signal: AbortSignal, idleMs: number, model: string): AsyncGenerator<AgentEvent> {
  let text = '';
  let finishReason: string | null = null;
  let usage: Record<string, number> | undefined;
  let sawDone = false;
  const tools = toolCallsCollector();
  for await (const batch of sseDataBatches(res.body!, signal, idleMs)) {
    let piece = '';
    for (const data of batch) {
      if (data.trim() === '[DONE]') {
        sawDone = true;
        continue;
      }
      const chunk = parseChunk(data);
      if (chunk?.error) {
        throw new AgentError('upstream_error', 'the model reported an error mid-stream', true);
      }
      if (chunk?.usage) usage = usageData(chunk.usage);
      const choice = chunk?.choices?.[0];
      if (!choice) continue;
      const content = choice.delta?.content;
      if (typeof content === 'string') piece += content;
      if (Array.isArray(choice.delta?.tool_calls)) tools.add(choice.delta.tool_calls);
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    if (piece) {
      text += piece;
      yield { type: 'delta', messageId: MESSAGE_ID, text: piece };
    }
  }
  if (signal.aborted) return;
  if (!sawDone) {
    throw new AgentError('upstream_incomplete', 'the model stream ended before [DONE]', true);
  }
  for (const call of tools.calls()) {
    yield { type: 'tool', messageId: MESSAGE_ID, name: call.name, phase: 'call', input: call.input };
  }
  const data: Record<string, unknown> = { model, finishReason };
  if (usage) data.usage = usage;
  if (tools.calls().length) data.toolCalls = tools.calls();
  yield { type: 'result', messageId: MESSAGE_ID, text, data };
}
