/**
 * A run's events as the AI SDK's UI message stream (the `ai` package, v7:
 * what `useChat`'s `DefaultChatTransport` parses), so an unmodified
 * `useChat` can show an edgestream run.
 *
 * Pure: one mapper per stream, fed the run's events in seq order from its
 * `run` event; it keeps only the little state the format needs (the open
 * text part, tool calls waiting for their result). The chunk shapes follow
 * `uiMessageChunkSchema` in the `ai` package; the tests round-trip every
 * event type through that package's own parser, so a format drift fails
 * there. The `ai` package itself is never bundled into the Worker.
 *
 * | edgestream event | UI message chunks                                               |
 * | ---------------- | --------------------------------------------------------------- |
 * | `run`            | `start` (messageId: stable per turn), `start-step`              |
 * | `status`         | `data-status` (id `status`: the latest replaces the one before) |
 * | `plan`           | `data-plan` (id `plan`)                                         |
 * | `delta`          | `text-start` (first of a text part), `text-delta`               |
 * | `tool` call      | `tool-input-available` (dynamic tool)                           |
 * | `tool` result    | `tool-output-available` for the oldest open call of that name   |
 * | `result`         | the text, if no delta carried it; `data-result` with its `data` |
 * | `error`          | `message-metadata` (the error), `error`                         |
 * | `done`           | `text-end`, `finish-step`, (`abort` if cancelled), `finish`     |
 *
 * The stream then closes with `data: [DONE]`.
 */
import type { RunError, RunEvent, RunState, TerminalState } from '../events';
import { singleLineJson } from '../sse/encode';

/** Headers of a UI message stream response; the `ai` package sends the same marker header. */
export const UI_MESSAGE_STREAM_HEADERS: Record<string, string> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  'x-vercel-ai-ui-message-stream': 'v1',
};

/** The last frame of every UI message stream. */
export const UI_STREAM_END = 'data: [DONE]\n\n';

/** What the assistant message's `metadata` says about its turn's run. */
export interface TurnMetadata {
  requestId: string;
  state?: RunState;
  error?: RunError;
}

/** The AI SDK's `finishReason` values this mapping uses. */
export type FinishReason = 'stop' | 'error' | 'other';

export type UiChunk =
  | { type: 'start'; messageId: string; messageMetadata: Partial<TurnMetadata> }
  | { type: 'start-step' }
  | { type: 'finish-step' }
  | { type: 'text-start'; id: string }
  | { type: 'text-delta'; id: string; delta: string }
  | { type: 'text-end'; id: string }
  | { type: 'tool-input-available'; toolCallId: string; toolName: string; input: unknown; dynamic: true }
  | { type: 'tool-output-available'; toolCallId: string; output: unknown; dynamic: true }
  | { type: `data-${string}`; id?: string; data: unknown; transient?: boolean }
  | { type: 'message-metadata'; messageMetadata: Partial<TurnMetadata> }
  | { type: 'error'; errorText: string }
  | { type: 'abort'; reason: string }
  | { type: 'finish'; finishReason: FinishReason; messageMetadata: Partial<TurnMetadata> };

const FINISH_REASON: Record<TerminalState, FinishReason> = { completed: 'stop', failed: 'error', cancelled: 'other' };

/** One chunk as an SSE frame: a single `data:` line of JSON (no `id:` or `event:`; the parser ignores them). */
export function encodeUiChunk(chunk: UiChunk): string {
  return `data: ${singleLineJson(chunk)}\n\n`;
}

export interface UiMessageMapper {
  /** The chunks for the run's next event. */
  map(event: RunEvent): UiChunk[];
  /** True once `done` was mapped (the stream may close). */
  readonly ended: boolean;
  /**
   * The chunks that end a stream whose run will not say more (its log was
   * deleted, say): the open text part closes and the message ends in an error.
   */
  abandon(errorText: string): UiChunk[];
}

/**
 * A mapper for one stream of one run.
 * @param messageId the assistant message's id: the same on every replay of
 *   the run, so `useChat` replaces the message instead of adding a second.
 * @param knownRequestId the run's requestId, when the caller knows it: a
 *   stream abandoned before its first event still names its run. Else it is
 *   learnt from the events (and left out of what comes before them).
 * @example
 * const mapper = uiMessageMapper(requestId);
 * for (const event of events) for (const chunk of mapper.map(event)) write(encodeUiChunk(chunk));
 * write(UI_STREAM_END);
 */
export function uiMessageMapper(messageId: string, knownRequestId?: string): UiMessageMapper {
  let started = false;
  let ended = false;
  let requestId = knownRequestId ?? '';
  /** What the metadata says of the run before any event: its id if known, else nothing (never an empty id). */
  const known = (): Partial<TurnMetadata> => (requestId !== '' ? { requestId } : {});
  /** The id of the text part deltas go to, while one is open. */
  let openText: string | null = null;
  let textParts = 0;
  let sawText = false;
  /** Tool calls without a result yet, oldest first, by tool name (edgestream's tool events carry no call id). */
  const openCalls = new Map<string, string[]>();

  const closeText = (out: UiChunk[]) => {
    if (openText !== null) out.push({ type: 'text-end', id: openText });
    openText = null;
  };
  const text = (out: UiChunk[], delta: string) => {
    if (openText === null) {
      openText = `text-${++textParts}`;
      out.push({ type: 'text-start', id: openText });
    }
    out.push({ type: 'text-delta', id: openText, delta });
    sawText = true;
  };

  return {
    get ended() {
      return ended;
    },
    map(event) {
      const out: UiChunk[] = [];
      if (ended) return out; // `done` is the last event of a run; nothing follows it
      if (!started) {
        // The `run` event comes first; a stream fed from later still gets its `start`.
        started = true;
        requestId = event.requestId;
        out.push({ type: 'start', messageId, messageMetadata: { requestId, state: 'running' } });
        out.push({ type: 'start-step' });
      }
      switch (event.type) {
        case 'run':
          break;
        case 'status':
          out.push({ type: 'data-status', id: 'status', data: { status: event.status, message: event.message } });
          break;
        case 'plan':
          out.push({ type: 'data-plan', id: 'plan', data: { steps: event.steps } });
          break;
        case 'delta':
          text(out, event.text);
          break;
        case 'tool': {
          closeText(out);
          const open = openCalls.get(event.name) ?? [];
          if (event.phase === 'call') {
            const toolCallId = `call-${event.seq}`;
            open.push(toolCallId);
            openCalls.set(event.name, open);
            out.push({ type: 'tool-input-available', toolCallId, toolName: event.name, input: event.input ?? {}, dynamic: true });
          } else {
            let toolCallId = open.shift();
            if (toolCallId === undefined) {
              // A result with no call before it: the SDK needs the call first.
              toolCallId = `call-${event.seq}`;
              out.push({ type: 'tool-input-available', toolCallId, toolName: event.name, input: event.input ?? {}, dynamic: true });
            }
            out.push({ type: 'tool-output-available', toolCallId, output: event.output ?? null, dynamic: true });
          }
          break;
        }
        case 'result':
          // An agent that does not stream says everything here; one that did already sent this text.
          if (!sawText && event.text !== '') text(out, event.text);
          if (event.data !== undefined) out.push({ type: 'data-result', id: 'result', data: event.data });
          break;
        case 'error': {
          closeText(out);
          const error = { code: event.code, message: event.message, retryable: event.retryable };
          // Before `error`: useChat stops reading at `error`, and the message should still say why.
          out.push({ type: 'message-metadata', messageMetadata: { state: 'failed', error } });
          out.push({ type: 'error', errorText: event.message });
          break;
        }
        case 'done':
          closeText(out);
          out.push({ type: 'finish-step' });
          if (event.state === 'cancelled') out.push({ type: 'abort', reason: 'cancelled' });
          out.push({ type: 'finish', finishReason: FINISH_REASON[event.state], messageMetadata: { requestId, state: event.state } });
          ended = true;
          break;
      }
      return out;
    },
    abandon(errorText) {
      const out: UiChunk[] = [];
      if (ended) return out;
      if (!started) out.push({ type: 'start', messageId, messageMetadata: known() });
      started = true;
      closeText(out);
      out.push({ type: 'error', errorText });
      out.push({ type: 'finish', finishReason: 'error', messageMetadata: known() });
      ended = true;
      return out;
    },
  };
}
