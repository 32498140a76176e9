/**
 * `openai`: any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure,
 * Groq, Together, vLLM, llama.cpp server, Ollama, LM Studio), streamed.
 *
 * Configured by the deployment only: OPENAI_BASE_URL, OPENAI_API_KEY
 * (secret), OPENAI_MODEL. A client may choose model, temperature and max
 * tokens; never where the request goes or with which key.
 */
import * as z from 'zod/mini';
import type { AppEnv } from '../../env';
import { chatMessages, readChatStream, type CompletionChunk } from '../chat/stream';
import { answerBody, completionEvents } from '../chat/non-stream-answer';
import { errorCodeInBody, upstreamHttpError } from '../upstream/errors';
import { textPrefix } from '../upstream/sse';
import { requestUpstream } from '../upstream/request';
import { idleMsFrom } from '../upstream/timeouts';
import { endpointProblem, endpointUrl } from '../upstream/endpoint-url';
import { AgentError, type Agent, type AgentContext, type AgentInput } from '../types';

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
const ToolDefinition = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({
    name: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -, at most 64')),
    description: z.optional(z.string().check(z.maxLength(1024))),
    parameters: z.optional(z.record(z.string(), z.unknown())),
  }),
});

export const OpenAIOptions = z.strictObject({
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
  maxTokens: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
  tools: z.optional(z.array(ToolDefinition).check(z.minLength(1), z.maxLength(MAX_TOOLS))),
});
export type OpenAIOptions = z.infer<typeof OpenAIOptions>;

/** A chunk as OpenAI-compatible servers send it; Groq has put `usage` under `x_groq`. */
type OpenAIChunk = CompletionChunk & { x_groq?: { usage?: unknown } };

export const openaiAgent: Agent<OpenAIOptions> = {
  name: 'openai',
  description: 'An OpenAI-compatible Chat Completions model, streamed.',
  options: OpenAIOptions,
  deterministic: false,
  notConfigured(env) {
    if (!env.OPENAI_API_KEY && !env.OPENAI_BASE_URL) {
      return 'set OPENAI_API_KEY (wrangler secret put OPENAI_API_KEY), or OPENAI_BASE_URL for a local server that needs no key';
    }
    return endpointProblem(() => chatCompletionsUrl(env.OPENAI_BASE_URL));
  },
  async *run(input: AgentInput<OpenAIOptions>, signal: AbortSignal, ctx: AgentContext) {
    const { env } = ctx;
    const url = chatCompletionsUrl(env.OPENAI_BASE_URL);
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
    const res = await streamCompletion(url, env, body, signal, idleMs);
    if (!res) return; // cancelled before the model answered
    const answer = await answerBody(res, idleMs, env.OPENAI_API_KEY).catch((err: unknown) => {
      if (signal.aborted) return null;
      throw err;
    });
    if (!answer || signal.aborted) return;
    if ('completion' in answer) {
      yield* completionEvents(answer.completion, model);
      return;
    }
    yield* readChatStream(answer.stream, signal, {
      provider: 'model',
      model,
      idleMs,
      secret: env.OPENAI_API_KEY,
      parts: (chunk: OpenAIChunk | undefined) => {
        const choice = chunk?.choices?.[0];
        const delta = choice?.delta;
        return {
          content: delta?.content,
          // DeepSeek, vLLM and Qwen say `reasoning_content`; Ollama and OpenRouter `reasoning`.
          reasoning: delta?.reasoning_content ?? delta?.reasoning,
          refusal: delta?.refusal,
          toolCalls: delta?.tool_calls,
          finishReason: choice?.finish_reason,
          // Groq has reported usage in `x_groq` instead.
          usage: chunk?.usage ?? chunk?.x_groq?.usage,
          error: chunk?.error,
        };
      },
    });
  },
};

/** `<OPENAI_BASE_URL>/chat/completions`, keeping a query string (Azure's `?api-version=`). */
export function chatCompletionsUrl(configured: string | undefined): URL {
  return endpointUrl(configured, OPENAI_DEFAULT_BASE_URL, { url: 'OPENAI_BASE_URL', key: 'OPENAI_API_KEY' }, '/chat/completions');
}

/** How much of an error answer to read when looking for its code or the field it refused. */
const ERROR_BODY_BYTES = 8 * 1024;
/** How long to wait for an error body: the status already says what happened. */
const ERROR_BODY_WAIT_MS = 5_000;

/**
 * POST the request and return the successful response, or null when cancelled.
 * Some servers refuse `stream_options` (Mistral with 422; Groq, older Azure
 * API versions and Databricks with 400, naming the field): then ask once
 * more without it; the answer just has no usage. Nothing was generated by
 * the refused request, so repeating it is safe.
 */
async function streamCompletion(
  url: URL,
  env: AppEnv,
  body: Record<string, unknown>,
  signal: AbortSignal,
  idleMs: number,
): Promise<Response | null> {
  let res = await requestCompletion(url, env, body, signal, idleMs);
  if (!res) return null;
  if (!res.ok) {
    let detail = await textPrefix(res, ERROR_BODY_BYTES, Math.min(idleMs, ERROR_BODY_WAIT_MS));
    if ((res.status === 400 || res.status === 422) && /stream_options|include_usage/i.test(detail)) {
      const { stream_options: _refused, ...withoutUsage } = body;
      res = await requestCompletion(url, env, withoutUsage, signal, idleMs);
      if (!res) return null;
      detail = res.ok ? '' : await textPrefix(res, ERROR_BODY_BYTES, Math.min(idleMs, ERROR_BODY_WAIT_MS));
    }
    if (!res.ok) throw upstreamHttpError(res.status, 'the model endpoint', errorCodeInBody(detail, env.OPENAI_API_KEY));
  }
  if (!res.body) throw new AgentError('upstream_malformed', 'the model endpoint answered without a body', true);
  return res;
}

async function requestCompletion(url: URL, env: AppEnv, body: unknown, signal: AbortSignal, idleMs: number): Promise<Response | null> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  if (env.OPENAI_API_KEY) headers.Authorization = `Bearer ${env.OPENAI_API_KEY}`;
  return requestUpstream(url, { method: 'POST', headers, body: JSON.stringify(body) }, signal, idleMs, {
    timeout: (ms) => `the model did not answer within ${ms} ms`,
    unreachable: 'could not reach the model endpoint (OPENAI_BASE_URL)',
    redirects: 'OPENAI_BASE_URL redirects; set the final URL',
  });
}
