/** What the chat-model agents share: the conversation, reading the stream, tool calls, usage. */
import type { AgentEvent } from '../events';
import { AgentError, type AgentInput, type ChatMessage } from './types';
import { parseChunk, sseDataBatches } from './upstream-sse';

/** Chat agents answer with one message. */
const MESSAGE_ID = 'm1';

/** Earlier turns from the request, then the query as the newest user turn. */
export function chatMessages(input: AgentInput<unknown>): ChatMessage[] {
  return [...input.messages, { role: 'user', content: input.query }];
}

export interface ToolCall {
  id: string | undefined;
  name: string;
  /** Parsed JSON arguments, or the raw string when the model sent invalid JSON. */
  input: unknown;
}

/**
 * Streamed tool calls arrive as fragments keyed by `index`: the id and name
 * once, the JSON arguments in pieces. Assemble them in arrival order.
 */
export function toolCallsCollector() {
  const parts = new Map<number, { id?: string; name: string; args: string }>();
  return {
    add(deltas: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[]) {
      for (const d of deltas) {
        const index = typeof d.index === 'number' ? d.index : parts.size;
        const part = parts.get(index) ?? { name: '', args: '' };
        if (d.id) part.id = d.id;
        if (d.function?.name) part.name += d.function.name;
        if (d.function?.arguments) part.args += d.function.arguments;
        parts.set(index, part);
      }
    },
    calls(): ToolCall[] {
      return [...parts.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, p]) => ({ id: p.id, name: p.name, input: parseArgs(p.args) }));
    },
  };
}

function parseArgs(args: string): unknown {
  if (args === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return args;
  }
}

/** Keep only numeric usage counters (never echo unknown upstream fields). */
export function usageData(usage: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(usage)) if (typeof value === 'number') out[key] = value;
  return out;
}

/** What one streamed chunk carries, in whichever dialect the provider speaks. */
export interface ChunkParts {
  content?: unknown;
  toolCalls?: unknown;
  finishReason?: unknown;
  usage?: unknown;
  /** The provider reported an error inside the stream. */
  error?: boolean;
}

/**
 * Turn a chat model's SSE stream into agent events: one `delta` per network
 * chunk (the pieces that arrived together, merged: fewer events and rows,
 * nothing held back), `tool` calls once assembled, then one `result`.
 * A stream that ends without `[DONE]` is incomplete, and fails the run.
 */
export async function* readChatStream(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  opts: { provider: string; model: string; idleMs: number; parts: (chunk: any) => ChunkParts },
): AsyncGenerator<AgentEvent> {
  let text = '';
  let finishReason: string | null = null;
  let usage: Record<string, number> | undefined;
  let sawDone = false;
  const tools = toolCallsCollector();
  for await (const batch of sseDataBatches(body, signal, opts.idleMs)) {
    let piece = '';
    for (const data of batch) {
      if (data.trim() === '[DONE]') {
        sawDone = true;
        break; // nothing after [DONE] belongs to the answer
      }
      const parts = opts.parts(parseChunk(data));
      if (parts.error) throw new AgentError('upstream_error', `${opts.provider} reported an error mid-stream`, true);
      if (typeof parts.content === 'string') piece += parts.content;
      if (Array.isArray(parts.toolCalls)) tools.add(parts.toolCalls);
      if (typeof parts.finishReason === 'string') finishReason = parts.finishReason;
      if (parts.usage && typeof parts.usage === 'object') usage = usageData(parts.usage as Record<string, unknown>);
    }
    if (piece) {
      text += piece;
      yield { type: 'delta', messageId: MESSAGE_ID, text: piece };
    }
    // The answer is complete at [DONE]; a server or proxy that keeps the
    // connection open after it must not turn a finished answer into a timeout.
    if (sawDone) break;
  }
  if (signal.aborted) return;
  if (!sawDone) throw new AgentError('upstream_incomplete', `the ${opts.provider} stream ended before [DONE]`, true);
  const calls = tools.calls();
  for (const call of calls) yield { type: 'tool', messageId: MESSAGE_ID, name: call.name, phase: 'call', input: call.input };
  const data: Record<string, unknown> = { model: opts.model, finishReason };
  if (usage) data.usage = usage;
  if (calls.length) data.toolCalls = calls;
  yield { type: 'result', messageId: MESSAGE_ID, text, data };
}
