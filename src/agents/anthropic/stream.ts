/**
 * Reading Anthropic's streamed Messages answer
 * (https://docs.claude.com/en/docs/build-with-claude/streaming) with the
 * shared pieces: SSE from upstream/sse.ts, the answer's assembly from
 * chat/answer.ts, the 16 ms text window from chat/coalesce.ts.
 *
 * The stream: `message_start` (input usage), then per content block a
 * `content_block_start`, its `content_block_delta`s and a
 * `content_block_stop`, then `message_delta` (stop_reason, cumulative
 * usage) and `message_stop`. `ping`s may come anywhere, an `error` event
 * instead of the rest. Each event's data carries its `type`, the same as
 * its SSE `event:` name, so the data alone is read.
 */
import type { AgentEvent } from '../../events';
import { ChatAnswer, MESSAGE_ID, type ChunkParts, type Step } from '../chat/answer';
import { COALESCE_MS, coalesceText } from '../chat/coalesce';
import { anthropicStreamError } from './errors';
import { parseChunk, sseDataBatches, type DataBatch } from '../upstream/sse';
import { AgentError } from '../types';

export interface MessagesStreamOptions {
  model: string;
  idleMs: number;
  /** The API key, so that an error type quoting it is never shown. */
  secret?: string;
}

/**
 * Turn the event stream into agent events: `delta`s merged over a short
 * window, `status` `thinking` while the model thinks, `tool` calls once
 * assembled, then one `result`. A stream that ends without `message_stop`
 * is incomplete, and fails the run.
 */
export async function* readMessagesStream(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  opts: MessagesStreamOptions,
): AsyncGenerator<AgentEvent> {
  const answer = new ChatAnswer();
  const message = new MessageEvents(answer, opts.secret);
  // Ends the read on the run's abort, and also when our consumer stops
  // early while the coalescer has a read in flight.
  const reading = new AbortController();
  const stop = () => reading.abort();
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  try {
    const steps = messageSteps(sseDataBatches(body, reading.signal, opts.idleMs), message);
    yield* coalesceText(steps, { messageId: MESSAGE_ID, windowMs: COALESCE_MS, signal });
    if (signal.aborted) return;
    if (!message.stopped) throw new AgentError('upstream_incomplete', 'the Anthropic stream ended before message_stop', true);
    yield* answer.finish(opts.model);
  } finally {
    signal.removeEventListener('abort', stop);
    reading.abort();
  }
}

/**
 * Per network chunk, what its events add to the answer. Stops at
 * `message_stop`: a proxy that keeps the connection open must not turn a
 * finished answer into a timeout. A failing event first hands over the
 * steps of the events before it.
 */
async function* messageSteps(batches: AsyncIterable<DataBatch>, message: MessageEvents): AsyncGenerator<Step[]> {
  for await (const batch of batches) {
    const steps: Step[] = [];
    let failure: unknown;
    for (const data of batch.data) {
      if (data.trim() === '') continue; // an event with no data says nothing
      try {
        steps.push(...message.apply(parseEvent(data, batch)));
      } catch (err) {
        failure = err;
        break;
      }
      if (message.stopped) break;
    }
    if (steps.length) yield steps;
    if (failure) throw failure;
    if (message.stopped) return;
  }
}

/**
 * The fields of a Messages stream event read here. Any of them may be
 * missing or of another type (see `parseChunk`); `MessageEvents` checks
 * each one it uses.
 */
interface StreamEvent {
  type?: unknown;
  index?: unknown;
  message?: { usage?: unknown };
  content_block?: ContentBlock;
  /** `content_block_delta`'s delta, or `message_delta`'s (with `stop_reason`). */
  delta?: BlockDelta & { stop_reason?: unknown };
  usage?: unknown;
  error?: unknown;
}

interface ContentBlock {
  type?: unknown;
  text?: unknown;
  thinking?: unknown;
  id?: unknown;
  name?: unknown;
  input?: unknown;
}

interface BlockDelta {
  type?: unknown;
  text?: unknown;
  thinking?: unknown;
  partial_json?: unknown;
}

function parseEvent(data: string, batch: DataBatch): StreamEvent | undefined {
  try {
    // Seen through the fields read here, unchecked on purpose (see parseChunk); JSON null as undefined.
    return (parseChunk(data) ?? undefined) as StreamEvent | undefined;
  } catch (err) {
    // Not JSON and cut off by the end of the stream: the stream was cut short, the event is fine.
    if (batch.unterminated) throw new AgentError('upstream_incomplete', 'the Anthropic stream ended in the middle of an event', true);
    throw err;
  }
}

type BlockKind = 'text' | 'thinking' | 'tool_use';

/** One streamed message's state: its content blocks by index, its usage so far. */
class MessageEvents {
  /** `message_stop` arrived: the message is complete. */
  stopped = false;
  readonly #answer: ChatAnswer;
  readonly #secret: string | undefined;
  readonly #blocks = new Map<number, { kind: BlockKind; input?: unknown; sentInput: boolean }>();
  /** Numeric counters only; `message_delta`'s are cumulative and override `message_start`'s. */
  readonly #usage: Record<string, number> = {};

  constructor(answer: ChatAnswer, secret: string | undefined) {
    this.#answer = answer;
    this.#secret = secret;
  }

  /** Take in one event; returns what to emit for it, in order. */
  apply(event: StreamEvent | undefined): Step[] {
    switch (event?.type) {
      case 'message_start':
        return this.#answer.apply({ usage: this.#addUsage(event.message?.usage) });
      case 'content_block_start':
        return this.#answer.apply(this.#blockStart(event.index, event.content_block));
      case 'content_block_delta':
        return this.#answer.apply(this.#blockDelta(event.index, event.delta));
      case 'content_block_stop':
        return this.#answer.apply(this.#blockStop(event.index));
      case 'message_delta':
        return this.#answer.apply({ finishReason: event.delta?.stop_reason, usage: this.#addUsage(event.usage) });
      case 'message_stop':
        this.stopped = true;
        return [];
      case 'error':
        throw anthropicStreamError(event.error, this.#secret);
      default:
        // `ping`, and event types added later: "your code should handle unknown event types gracefully".
        return [];
    }
  }

  #blockStart(index: unknown, block: ContentBlock | undefined): ChunkParts {
    if (typeof index !== 'number' || !block || typeof block !== 'object') return {};
    switch (block.type) {
      case 'text':
        this.#blocks.set(index, { kind: 'text', sentInput: false });
        return { content: block.text };
      case 'thinking':
        this.#blocks.set(index, { kind: 'thinking', sentInput: false });
        return { reasoning: block.thinking };
      case 'tool_use':
        this.#blocks.set(index, { kind: 'tool_use', input: block.input, sentInput: false });
        // The collector speaks OpenAI's fragments: the id and name first, the JSON input in pieces.
        return { toolCalls: [{ index, id: block.id, function: { name: block.name, arguments: '' } }] };
      default:
        // redacted_thinking (encrypted, nothing to show), server tool blocks and their results.
        return {};
    }
  }

  #blockDelta(index: unknown, delta: BlockDelta | undefined): ChunkParts {
    const block = typeof index === 'number' ? this.#blocks.get(index) : undefined;
    if (!block || !delta || typeof delta !== 'object') return {};
    if (delta.type === 'text_delta' && block.kind === 'text') return { content: delta.text };
    if (delta.type === 'thinking_delta' && block.kind === 'thinking') return { reasoning: delta.thinking };
    if (delta.type === 'input_json_delta' && block.kind === 'tool_use' && typeof delta.partial_json === 'string') {
      block.sentInput ||= delta.partial_json !== '';
      return { toolCalls: [{ index, function: { arguments: delta.partial_json } }] };
    }
    // signature_delta (opaque, only for sending the thinking back), citations_delta.
    return {};
  }

  #blockStop(index: unknown): ChunkParts {
    const block = typeof index === 'number' ? this.#blocks.get(index) : undefined;
    // The docs promise the input as deltas, with `{}` at the start; should a
    // server send it whole in the start instead, that is the input.
    if (block?.kind !== 'tool_use' || block.sentInput || !isNonEmptyObject(block.input)) return {};
    block.sentInput = true;
    return { toolCalls: [{ index, function: { arguments: JSON.stringify(block.input) } }] };
  }

  #addUsage(usage: unknown): Record<string, number> | undefined {
    if (!usage || typeof usage !== 'object') return undefined;
    // message_delta may say `"input_tokens": null`: that is no news, not zero.
    for (const [key, value] of Object.entries(usage)) if (typeof value === 'number') this.#usage[key] = value;
    return { ...this.#usage };
  }
}

const isNonEmptyObject = (value: unknown): boolean => !!value && typeof value === 'object' && Object.keys(value).length > 0;
