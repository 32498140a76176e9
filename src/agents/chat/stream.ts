/** What the chat-model agents share: the conversation and reading the streamed answer. */
import type { AgentEvent } from '../../events';
import { ChatAnswer, MESSAGE_ID, type ChunkParts, type Step } from './answer';
import { COALESCE_MS, coalesceText } from './coalesce';
import { safeErrorCode } from '../upstream/errors';
import { parseChunk, sseDataBatches, type DataBatch } from '../upstream/sse';
import { AgentError, type AgentInput, type ChatMessage } from '../types';

/** Earlier turns from the request, then the query as the newest user turn. */
export function chatMessages(input: AgentInput<unknown>): ChatMessage[] {
  return [...input.messages, { role: 'user', content: input.query }];
}

/**
 * The fields of an OpenAI-style Chat Completions stream chunk the chat agents
 * read. Any of them may be missing or of another type (see `parseChunk`):
 * chat/answer.ts checks each one it uses.
 */
export interface CompletionChunk {
  choices?: readonly {
    delta?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown; refusal?: unknown; tool_calls?: unknown };
    finish_reason?: unknown;
  }[];
  usage?: unknown;
  error?: unknown;
}

/** How to read one provider's stream; `Chunk` names the fields `parts` reads (see `parseChunk`). */
export interface ChatStreamOptions<Chunk extends object> {
  provider: string;
  model: string;
  idleMs: number;
  /** What one parsed chunk carries; `undefined` when the chunk is JSON `null`. */
  parts: (chunk: Chunk | undefined) => ChunkParts;
  /** The API key, so that an error code quoting it is never shown. */
  secret?: string;
}

/**
 * Turn a chat model's SSE stream into agent events: `delta`s merged over a
 * short window (coalesce.ts), `status` when a reasoning model starts and
 * stops thinking, `tool` calls once assembled, then one `result`.
 * A stream that ends without `[DONE]` is incomplete, and fails the run.
 */
export async function* readChatStream<Chunk extends object>(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  opts: ChatStreamOptions<Chunk>,
): AsyncGenerator<AgentEvent> {
  const answer = new ChatAnswer();
  // Ends the read on the run's abort, and also when our consumer stops
  // early while the coalescer has a read in flight.
  const reading = new AbortController();
  const stop = () => reading.abort();
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  try {
    const steps = chatSteps(sseDataBatches(body, reading.signal, opts.idleMs), answer, opts);
    yield* coalesceText(steps, { messageId: MESSAGE_ID, windowMs: COALESCE_MS, signal });
    if (signal.aborted) return;
    if (!answer.done) throw new AgentError('upstream_incomplete', `the ${opts.provider} stream ended before [DONE]`, true);
    yield* answer.finish(opts.model);
  } finally {
    signal.removeEventListener('abort', stop);
    reading.abort();
  }
}

/**
 * Per network chunk, what its SSE events add to the answer. Stops at
 * `[DONE]`: nothing after it belongs to the answer, and a server or proxy
 * that keeps the connection open must not turn a finished answer into a
 * timeout. A failing chunk first hands over the steps of the chunks before it.
 */
async function* chatSteps<Chunk extends object>(
  batches: AsyncIterable<DataBatch>,
  answer: ChatAnswer,
  opts: ChatStreamOptions<Chunk>,
): AsyncGenerator<Step[]> {
  for await (const batch of batches) {
    const steps: Step[] = [];
    let failure: unknown;
    for (const data of batch.data) {
      if (data.trim() === '[DONE]') {
        answer.done = true;
        break;
      }
      try {
        steps.push(...answer.apply(chunkParts(data, batch, opts)));
      } catch (err) {
        failure = err;
        break;
      }
    }
    if (steps.length) yield steps;
    if (failure) throw failure;
    if (answer.done) return;
  }
}

function chunkParts<Chunk extends object>(data: string, batch: DataBatch, opts: ChatStreamOptions<Chunk>): ChunkParts {
  let chunk: unknown;
  try {
    chunk = parseChunk(data);
  } catch (err) {
    // Not JSON and cut off by the end of the stream: the stream was cut short, the chunk is fine.
    if (batch.unterminated) throw new AgentError('upstream_incomplete', `the ${opts.provider} stream ended in the middle of a chunk`, true);
    throw err;
  }
  // Seen through the fields `parts` reads, unchecked on purpose (see parseChunk); JSON null as undefined.
  const parts = opts.parts((chunk ?? undefined) as Chunk | undefined);
  if (parts.error) {
    const code = safeErrorCode(parts.error, opts.secret);
    throw new AgentError('upstream_error', `${opts.provider} reported an error mid-stream${code ? ` (${code})` : ''}`, true);
  }
  return parts;
}
