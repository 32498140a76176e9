/**
 * `ai-sdk`: the AI SDK's UI message stream (`toUIMessageStreamResponse()`,
 * header `x-vercel-ai-ui-message-stream: v1`): `data: {"type": ...}` chunks
 * as in `ai`'s ui-message-stream/ui-message-chunks.ts, then `data: [DONE]`.
 *
 * | chunk | here |
 * | --- | --- |
 * | `start` | its `messageId` becomes the answer's messageId (else `m1`) |
 * | `text-delta` | `delta` |
 * | `reasoning-delta` | the first: `status` `thinking`; the text goes to `result.data.reasoning` only |
 * | `tool-input-available`, `tool-input-error` | `tool` `call` (messageId = toolCallId) |
 * | `tool-output-available`, `-error`, `-denied` | `tool` `result` (`output`, `{ error }`, `{ denied: true }`) |
 * | `data-*` | `tool` `result` named after the type, `output` = its data |
 * | `source-url`, `source-document` | `result.data.sources` |
 * | `message-metadata`, `start`/`finish` `messageMetadata` | `result.data.metadata` |
 * | `finish` (or `[DONE]` without one) | `result` with the whole text and `finishReason`: the end |
 * | `error` | `upstream_error` (its errorText is not shown) |
 * | `abort` | `upstream_error` `aborted` |
 * | `*-start`, `*-end`, `start-step`, `finish-step`, `tool-input-delta`, `file`, `tool-approval-request`, unknown | dropped |
 */
import type { AgentEvent } from '../../../events';
import {
  MESSAGE_ID,
  isObject,
  isText,
  messageIdOf,
  notTheFormat,
  parseJson,
  reportedError,
  incomplete,
  type FormatReader,
  type Mapped,
  type RelayFormat,
  type UpstreamMessage,
} from './format';

/** What the answer has accumulated: kept in checkpoints, since the result is assembled here. */
interface State {
  messageId: string;
  text: string;
  reasoning: string;
  phase: 'waiting' | 'thinking' | 'answering';
  /** toolCallId -> toolName, for the results (which carry only the id). */
  tools: Record<string, string>;
  sources: { url?: string; title?: string; mediaType?: string }[];
  metadata?: unknown;
}

const fresh = (): State => ({ messageId: MESSAGE_ID, text: '', reasoning: '', phase: 'waiting', tools: {}, sources: [] });

function restore(saved: unknown): State {
  const state = fresh();
  if (!isObject(saved)) return state;
  if (typeof saved.messageId === 'string') state.messageId = saved.messageId;
  if (typeof saved.text === 'string') state.text = saved.text;
  if (typeof saved.reasoning === 'string') state.reasoning = saved.reasoning;
  if (saved.phase === 'thinking' || saved.phase === 'answering') state.phase = saved.phase;
  if (isObject(saved.tools)) state.tools = saved.tools as Record<string, string>;
  if (Array.isArray(saved.sources)) state.sources = saved.sources;
  if (saved.metadata !== undefined) state.metadata = saved.metadata;
  return state;
}

class AiSdkReader implements FormatReader {
  #s: State;

  constructor(restored?: unknown) {
    this.#s = restore(restored);
  }

  read(message: UpstreamMessage): Mapped {
    if (message.data.trim() === '[DONE]') return { events: [this.#result(undefined)], final: true };
    const chunk = parseJson(message);
    if (!isObject(chunk) || typeof chunk.type !== 'string')
      throw notTheFormat('an AI SDK UI message stream', 'a message without a chunk type');
    const s = this.#s;
    const events: AgentEvent[] = [];
    const type: string = chunk.type;
    switch (type) {
      case 'start':
        s.messageId = messageIdOf(chunk.messageId) ?? s.messageId;
        if (chunk.messageMetadata !== undefined) s.metadata = chunk.messageMetadata;
        break;
      case 'text-delta':
        if (isText(chunk.delta)) {
          if (s.phase === 'thinking') events.push({ type: 'status', status: 'generating', message: 'Writing the answer' });
          s.phase = 'answering';
          s.text += chunk.delta;
          events.push({ type: 'delta', messageId: s.messageId, text: chunk.delta });
        }
        break;
      case 'reasoning-delta':
        if (isText(chunk.delta)) {
          s.reasoning += chunk.delta;
          // Say once that the model is working; its thoughts stay out of the answer.
          if (s.phase === 'waiting') {
            s.phase = 'thinking';
            events.push({ type: 'status', status: 'thinking', message: 'Thinking' });
          }
        }
        break;
      case 'tool-input-start':
        if (typeof chunk.toolCallId === 'string' && typeof chunk.toolName === 'string') s.tools[chunk.toolCallId] = chunk.toolName;
        break;
      case 'tool-input-available':
      case 'tool-input-error':
        if (typeof chunk.toolCallId === 'string' && typeof chunk.toolName === 'string') {
          s.tools[chunk.toolCallId] = chunk.toolName;
          events.push({ type: 'tool', messageId: chunk.toolCallId, name: chunk.toolName, phase: 'call', input: chunk.input ?? null });
        }
        break;
      case 'tool-output-available':
      case 'tool-output-error':
      case 'tool-output-denied':
        if (typeof chunk.toolCallId === 'string') {
          const output =
            type === 'tool-output-available'
              ? (chunk.output ?? null)
              : type === 'tool-output-error'
                ? { error: chunk.errorText ?? null }
                : { denied: true };
          events.push({ type: 'tool', messageId: chunk.toolCallId, name: s.tools[chunk.toolCallId] ?? 'tool', phase: 'result', output });
        }
        break;
      case 'source-url':
        if (typeof chunk.url === 'string')
          s.sources.push(typeof chunk.title === 'string' ? { url: chunk.url, title: chunk.title } : { url: chunk.url });
        break;
      case 'source-document':
        if (typeof chunk.title === 'string')
          s.sources.push({ title: chunk.title, ...(typeof chunk.mediaType === 'string' ? { mediaType: chunk.mediaType } : {}) });
        break;
      case 'message-metadata':
        s.metadata = chunk.messageMetadata;
        break;
      case 'error':
        throw reportedError();
      case 'abort':
        throw reportedError('aborted');
      case 'finish':
        if (chunk.messageMetadata !== undefined) s.metadata = chunk.messageMetadata;
        return { events: [this.#result(typeof chunk.finishReason === 'string' ? chunk.finishReason : undefined)], final: true };
      default:
        // Custom data parts: what the app streams beside the text (a `tool` result, to keep it in the log).
        if (type.startsWith('data-')) {
          events.push({ type: 'tool', messageId: messageIdOf(chunk.id) ?? type, name: type, phase: 'result', output: chunk.data ?? null });
        }
    }
    return { events };
  }

  end(): AgentEvent[] {
    throw incomplete('its `finish` chunk');
  }

  state(): unknown {
    return this.#s;
  }

  #result(finishReason: string | undefined): AgentEvent {
    const s = this.#s;
    const data: Record<string, unknown> = { finishReason: finishReason ?? null };
    if (s.reasoning) data.reasoning = s.reasoning;
    if (s.sources.length) data.sources = s.sources;
    if (s.metadata !== undefined) data.metadata = s.metadata;
    return { type: 'result', messageId: s.messageId, text: s.text, data };
  }
}

export const aiSdkFormat: RelayFormat = {
  name: 'ai-sdk',
  idsAreCursors: true,
  create: (_settings, restored) => new AiSdkReader(restored),
};
