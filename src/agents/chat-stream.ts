/** Pieces shared by the chat-model agents: the conversation, tool-call assembly, usage. */
import type { AgentInput, ChatMessage } from './types';

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
