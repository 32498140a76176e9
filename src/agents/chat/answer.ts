/**
 * One chat model's answer as it accumulates: text, reasoning, refusal, tool
 * calls, finish reason and usage. Shared by the streamed reader and the
 * one-shot answer of a server that ignored `stream: true`.
 */
import type { AgentEvent } from '../../events';

/** Chat agents answer with one message. */
export const MESSAGE_ID = 'm1';

/** What one chunk (or one whole message) carries, in whichever dialect the provider speaks. */
export interface ChunkParts {
  content?: unknown;
  /** Thinking text of reasoning models: never part of the answer's deltas. */
  reasoning?: unknown;
  refusal?: unknown;
  toolCalls?: unknown;
  finishReason?: unknown;
  usage?: unknown;
  /** The provider's error object; truthy when it reported an error inside the stream. */
  error?: unknown;
}

/** A piece of answer text (merged by the coalescer), or an event to emit in order. */
export type Step = string | AgentEvent;

const isText = (value: unknown): value is string => typeof value === 'string' && value !== '';

export class ChatAnswer {
  text = '';
  /** The stream said `[DONE]`. */
  done = false;
  #reasoning = '';
  #refusal = '';
  #finishReason: string | null = null;
  #usage: Record<string, number> | undefined;
  #tools = toolCallsCollector();
  #phase: 'waiting' | 'thinking' | 'answering' = 'waiting';

  /** Take in one chunk; returns what to emit for it, in order. */
  apply(parts: ChunkParts): Step[] {
    const steps: Step[] = [];
    if (isText(parts.reasoning)) {
      this.#reasoning += parts.reasoning;
      // A reasoning model can think for a minute before its first answer
      // token: tell clients it is working, once, without showing the thoughts.
      if (this.#phase === 'waiting') {
        this.#phase = 'thinking';
        steps.push({ type: 'status', status: 'thinking', message: 'Thinking' });
      }
    }
    if (isText(parts.content)) {
      if (this.#phase === 'thinking') steps.push({ type: 'status', status: 'generating', message: 'Writing the answer' });
      this.#phase = 'answering';
      this.text += parts.content;
      steps.push(parts.content);
    }
    if (isText(parts.refusal)) this.#refusal += parts.refusal;
    if (Array.isArray(parts.toolCalls)) this.#tools.add(parts.toolCalls);
    if (typeof parts.finishReason === 'string') this.#finishReason = parts.finishReason;
    if (parts.usage && typeof parts.usage === 'object') this.#usage = usageData(parts.usage as Record<string, unknown>);
    return steps;
  }

  /** The events that close the answer: assembled tool calls, then the result. */
  finish(model: string): AgentEvent[] {
    const calls = this.#tools.calls();
    const events: AgentEvent[] = calls.map((call) => ({
      type: 'tool',
      messageId: MESSAGE_ID,
      name: call.name,
      phase: 'call',
      input: call.input,
    }));
    const data: Record<string, unknown> = { model, finishReason: this.#finishReason };
    if (this.#usage) data.usage = this.#usage;
    if (calls.length) data.toolCalls = calls;
    if (this.#reasoning) data.reasoning = this.#reasoning;
    if (this.#refusal) data.refusal = this.#refusal;
    events.push({ type: 'result', messageId: MESSAGE_ID, text: this.text, data });
    return events;
  }
}

export interface ToolCall {
  id: string | undefined;
  name: string;
  /** Parsed JSON arguments, or the raw string when the model sent invalid JSON. */
  input: unknown;
}

interface ToolCallFragment {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/**
 * Streamed tool calls arrive as fragments: the id and name first, the JSON
 * arguments in pieces. OpenAI keys them by `index`; some servers repeat the
 * name in every fragment, others send no index at all. Assemble them in
 * arrival order.
 */
export function toolCallsCollector() {
  type Part = { id?: string; name: string; args: string };
  const calls: Part[] = [];
  const byIndex = new Map<number, Part>();
  const start = (): Part => {
    const call: Part = { name: '', args: '' };
    calls.push(call);
    return call;
  };
  return {
    add(fragments: ToolCallFragment[]) {
      for (const f of fragments) {
        if (!f || typeof f !== 'object') continue;
        const name = typeof f.function?.name === 'string' ? f.function.name : '';
        let call: Part;
        if (typeof f.index === 'number') {
          call = byIndex.get(f.index) ?? start();
          byIndex.set(f.index, call);
        } else {
          // Without an index, only a new id or a new name says a call begins
          // (the same one again is a repeat); the rest continues the last call.
          const last = calls.at(-1);
          const begins = f.id ? f.id !== last?.id : name !== '' && name !== last?.name;
          call = begins || !last ? start() : last;
        }
        if (f.id && !call.id) call.id = f.id;
        // A name repeated in a later fragment is the same name, not more of it.
        if (name && name !== call.name) call.name = call.name ? call.name + name : name;
        if (typeof f.function?.arguments === 'string') call.args += f.function.arguments;
      }
    },
    calls(): ToolCall[] {
      return calls.map((c) => ({ id: c.id, name: c.name, input: parseArgs(c.args) }));
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
