/**
 * `anthropic`: Claude through Anthropic's Messages API, streamed, on our own
 * SSE reader (stream.ts) rather than `@anthropic-ai/sdk`: the SDK (1.16.0)
 * bundled alone is 402 KiB minified / 89 KiB gzip, more than this whole
 * Worker (62 KiB gzip minified), against 5.2 KiB minified for this agent, for
 * one POST and an event stream we already know how to read (docs/models.md).
 *
 * Configured by the deployment only: ANTHROPIC_API_KEY (secret),
 * ANTHROPIC_BASE_URL, ANTHROPIC_MODEL, ANTHROPIC_IDLE_TIMEOUT_MS. A client
 * may choose model, temperature, max tokens and tools; never where the
 * request goes or with which key.
 */
import * as z from 'zod/mini';
import { chatMessages } from '../chat/stream';
import { ANTHROPIC_PROVIDER } from './errors';
import { readMessagesStream } from './stream';
import { errorCodeInBody, upstreamHttpError } from '../upstream/errors';
import { textPrefix } from '../upstream/sse';
import { requestUpstream } from '../upstream/request';
import { idleMsFrom } from '../upstream/timeouts';
import { endpointProblem, endpointUrl } from '../upstream/endpoint-url';
import { AgentError, type Agent, type AgentContext, type AgentInput, type ChatMessage } from '../types';

/** The API root, as the SDKs and ANTHROPIC_BASE_URL elsewhere mean it: `/v1/messages` is appended. */
export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
/** "The best combination of speed and intelligence" in Anthropic's models overview. */
export const ANTHROPIC_DEFAULT_MODEL = 'claude-sonnet-5';
/** The API version the request and stream formats here are written against (sent as `anthropic-version`). */
export const ANTHROPIC_VERSION = '2023-06-01';
/**
 * The API requires `max_tokens`; this is it when neither the run nor its
 * profile sets one (the built-in profile caps anonymous callers at 1024 too).
 */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;
/**
 * No byte for this long fails the run. Generous: a thinking model can be
 * quiet for a while (the API sends `ping`s, which count). ANTHROPIC_IDLE_TIMEOUT_MS overrides.
 */
export const ANTHROPIC_IDLE_TIMEOUT_MS = 60_000;

/** Tool definitions a run may offer the model, as for the openai agent. */
const MAX_TOOLS = 32;

/**
 * A client tool in Anthropic's shape. Safe from a client: nothing runs
 * here; the model's calls come back as `tool` events for the client to act on.
 */
const ToolDefinition = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -, at most 64')),
  // Anthropic asks for detailed descriptions (several sentences): more room than OpenAI's.
  description: z.optional(z.string().check(z.maxLength(4096))),
  input_schema: z.looseObject({ type: z.literal('object') }),
});

export const AnthropicOptions = z.strictObject({
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(1))),
  maxTokens: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
  tools: z.optional(z.array(ToolDefinition).check(z.minLength(1), z.maxLength(MAX_TOOLS))),
});
export type AnthropicOptions = z.infer<typeof AnthropicOptions>;

const NOT_CONFIGURED = 'set ANTHROPIC_API_KEY (wrangler secret put ANTHROPIC_API_KEY)';

export const anthropicAgent: Agent<AnthropicOptions> = {
  name: 'anthropic',
  description: 'A Claude model through the Anthropic Messages API, streamed.',
  options: AnthropicOptions,
  deterministic: false,
  notConfigured(env) {
    if (!env.ANTHROPIC_API_KEY) return NOT_CONFIGURED;
    return endpointProblem(() => messagesUrl(env.ANTHROPIC_BASE_URL));
  },
  async *run(input: AgentInput<AnthropicOptions>, signal: AbortSignal, ctx: AgentContext) {
    const { env } = ctx;
    const key = env.ANTHROPIC_API_KEY;
    // Normally refused at the start; env can change between the start and the run.
    if (!key) throw new AgentError('agent_not_configured', NOT_CONFIGURED, false);
    const url = messagesUrl(env.ANTHROPIC_BASE_URL);
    const model = input.options.model ?? env.ANTHROPIC_MODEL ?? ANTHROPIC_DEFAULT_MODEL;
    const body: Record<string, unknown> = {
      model,
      max_tokens: input.options.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
      ...conversation(chatMessages(input)),
      stream: true,
    };
    if (input.options.temperature !== undefined) body.temperature = input.options.temperature;
    if (input.options.tools !== undefined) body.tools = input.options.tools;

    yield { type: 'status', status: 'generating', message: `Asking ${model}` };
    const idleMs = idleMsFrom(env.ANTHROPIC_IDLE_TIMEOUT_MS, ANTHROPIC_IDLE_TIMEOUT_MS);
    const res = await requestMessage(url, key, body, signal, idleMs);
    if (!res) return; // cancelled before the model answered
    yield* readMessagesStream(res.body!, signal, { model, idleMs, secret: key });
  },
};

/**
 * Our messages in the Messages API's shape: `system` is a top-level field,
 * not a role, so system messages (a profile's prompt first) are joined into
 * it. Empty messages are left out: the API refuses empty text content, and
 * they say nothing.
 */
export function conversation(messages: ChatMessage[]): { system?: string; messages: { role: 'user' | 'assistant'; content: string }[] } {
  const system = messages.filter((m) => m.role === 'system' && m.content !== '').map((m) => m.content);
  const turns = messages.flatMap((m) => (m.role === 'system' || m.content === '' ? [] : [{ role: m.role, content: m.content }]));
  return system.length ? { system: system.join('\n\n'), messages: turns } : { messages: turns };
}

/** `<ANTHROPIC_BASE_URL>/v1/messages`, keeping a query string (a gateway's). */
export function messagesUrl(configured: string | undefined): URL {
  return endpointUrl(configured, ANTHROPIC_DEFAULT_BASE_URL, { url: 'ANTHROPIC_BASE_URL', key: 'ANTHROPIC_API_KEY' }, '/v1/messages');
}

/** How much of an error answer to read when looking for its type. */
const ERROR_BODY_BYTES = 8 * 1024;
/** How long to wait for an error body: the status already says what happened. */
const ERROR_BODY_WAIT_MS = 5_000;

/** POST the request; the streaming response, or null when cancelled. */
async function requestMessage(url: URL, key: string, body: unknown, signal: AbortSignal, idleMs: number): Promise<Response | null> {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'text/event-stream',
    'x-api-key': key,
    'anthropic-version': ANTHROPIC_VERSION,
  };
  const res = await requestUpstream(url, { method: 'POST', headers, body: JSON.stringify(body) }, signal, idleMs, {
    timeout: (ms) => `${ANTHROPIC_PROVIDER} did not answer within ${ms} ms`,
    unreachable: `could not reach ${ANTHROPIC_PROVIDER} (ANTHROPIC_BASE_URL)`,
    redirects: 'ANTHROPIC_BASE_URL redirects; set the final URL',
  });
  if (!res) return null;
  if (!res.ok) {
    const detail = await textPrefix(res, ERROR_BODY_BYTES, Math.min(idleMs, ERROR_BODY_WAIT_MS));
    throw upstreamHttpError(res.status, ANTHROPIC_PROVIDER, errorCodeInBody(detail, key));
  }
  if (!res.body || !/^\s*text\/event-stream/i.test(res.headers.get('Content-Type') ?? '')) {
    // Asked for a stream, got something else (a web page, a proxy's JSON): asking again gets the same.
    await res.body?.cancel().catch(() => {});
    throw new AgentError(
      'upstream_malformed',
      `${ANTHROPIC_PROVIDER} did not answer with an event stream (check ANTHROPIC_BASE_URL)`,
      false,
    );
  }
  return res;
}
