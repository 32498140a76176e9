/**
 * `workers-ai`: a model on Cloudflare Workers AI through the `AI` binding
 * (`[ai] binding = "AI"` in wrangler.toml), streamed.
 *
 * With `stream: true` the binding returns SSE bytes: `data: {"response":"..."}`
 * per token (newer models send OpenAI-style `choices[0].delta.content`
 * instead, reasoning models `delta.reasoning_content` too; all are read),
 * then `data: [DONE]`.
 */
import * as z from 'zod/mini';
import { chatMessages, readChatStream, type CompletionChunk } from '../chat/stream';
import { AgentError, type Agent, type AgentContext, type AgentInput } from '../types';
import { firstByteGuard, idleMsFrom, untilAborted } from '../upstream/timeouts';
import { workersAiError } from './errors';

export const WORKERS_AI_DEFAULT_MODEL = '@cf/meta/llama-3.1-8b-instruct';
/**
 * No byte for this long fails the run; the binding has no timeout of its own
 * we can rely on. Generous for the same reason as OpenAI's (thinking models).
 * WORKERS_AI_IDLE_TIMEOUT_MS overrides.
 */
export const WORKERS_AI_IDLE_TIMEOUT_MS = 60_000;

export const WorkersAIOptions = z.strictObject({
  model: z.optional(
    z.string().check(z.regex(/^@(cf|hf)\/[\w.@/-]{1,200}$/, 'must be a Workers AI model name such as @cf/meta/llama-3.1-8b-instruct')),
  ),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(5))),
  maxTokens: z.optional(z.int().check(z.gte(1), z.lte(131_072))),
});
export type WorkersAIOptions = z.infer<typeof WorkersAIOptions>;

/** A chunk of the binding's stream: older models send `response`, newer ones the OpenAI shape. */
type WorkersAIChunk = CompletionChunk & { response?: unknown };

export const workersAiAgent: Agent<WorkersAIOptions> = {
  name: 'workers-ai',
  description: 'A Cloudflare Workers AI model through the AI binding, streamed.',
  options: WorkersAIOptions,
  deterministic: false,
  notConfigured(env) {
    return env.AI
      ? null
      : 'add `[ai] binding = "AI"` to wrangler.toml and deploy (Workers AI runs only on Cloudflare: with the binding, `wrangler dev` needs `wrangler login` or CLOUDFLARE_API_TOKEN)';
  },
  async *run(input: AgentInput<WorkersAIOptions>, signal: AbortSignal, ctx: AgentContext) {
    const ai = ctx.env.AI;
    if (!ai) throw new AgentError('agent_not_configured', 'the AI binding is missing', false);
    const model = input.options.model ?? ctx.env.WORKERS_AI_MODEL ?? WORKERS_AI_DEFAULT_MODEL;
    const params: Record<string, unknown> = { messages: chatMessages(input), stream: true };
    if (input.options.temperature !== undefined) params.temperature = input.options.temperature;
    if (input.options.maxTokens !== undefined) params.max_tokens = input.options.maxTokens;

    const idleMs = idleMsFrom(ctx.env.WORKERS_AI_IDLE_TIMEOUT_MS, WORKERS_AI_IDLE_TIMEOUT_MS);

    yield { type: 'status', status: 'generating', message: `Asking ${model}` };
    const guard = firstByteGuard(signal, idleMs);
    let stream: unknown;
    try {
      const run = ai.run as (m: string, p: unknown, o?: unknown) => Promise<unknown>;
      stream = await untilAborted(run.call(ai, model, params, { signal: guard.signal }), guard.signal, (late) => {
        if (late instanceof ReadableStream) late.cancel().catch(() => {}); // nobody will read it
      });
    } catch (err) {
      if (signal.aborted) return;
      if (guard.timedOut()) throw new AgentError('upstream_timeout', `Workers AI did not answer within ${idleMs} ms`, true);
      throw workersAiError(err, model);
    } finally {
      guard.answered();
    }
    if (!(stream instanceof ReadableStream)) {
      throw new AgentError('upstream_malformed', 'Workers AI did not return a stream', true);
    }
    yield* readChatStream(stream as ReadableStream<Uint8Array>, signal, {
      provider: 'Workers AI',
      model,
      idleMs,
      parts: (chunk: WorkersAIChunk | undefined) => {
        const choice = chunk?.choices?.[0];
        return {
          // Older models send `response`; newer ones the OpenAI shape, some
          // with an empty `response` beside it: the text is wherever it is not empty.
          content: typeof chunk?.response === 'string' && chunk.response !== '' ? chunk.response : choice?.delta?.content,
          reasoning: choice?.delta?.reasoning_content ?? choice?.delta?.reasoning,
          finishReason: choice?.finish_reason,
          usage: chunk?.usage,
          error: chunk?.error,
        };
      },
    });
  },
};
