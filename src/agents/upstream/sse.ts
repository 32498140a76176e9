/**
 * Reading a model's streamed answer: SSE bytes -> the `data` of each event,
 * grouped by network chunk, with an idle timeout. Shared by the OpenAI and
 * Workers AI agents; parsing is eventsource-parser's, not ours.
 */
import { createParser } from 'eventsource-parser';
import { readWithin } from '../../lib/timing';
import { AgentError } from '../types';

/** The `data` strings of the events completed by one network chunk. */
export interface DataBatch {
  data: string[];
  /**
   * The last event of a stream that ended without its blank line: complete
   * as far as the sender is concerned (`data: [DONE]\n` then EOF), or cut off.
   */
  unterminated?: true;
}

/**
 * Yield, per network chunk, the data of the SSE events it completed.
 * Throws AgentError `upstream_timeout` when no byte arrives for `idleMs`.
 * Returns quietly when `signal` aborts (the run was cancelled or timed out).
 */
export async function* sseDataBatches(body: ReadableStream<Uint8Array>, signal: AbortSignal, idleMs: number): AsyncGenerator<DataBatch> {
  let batch: string[] = [];
  const parser = createParser({ onEvent: (event) => batch.push(event.data) });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const result = await readWithin(reader, idleMs);
      if (signal.aborted) return;
      if (result === 'timeout') {
        throw new AgentError('upstream_timeout', `the model sent nothing for ${idleMs} ms`, true);
      }
      if (result.done) break;
      parser.feed(decoder.decode(result.value, { stream: true }));
      if (batch.length > 0) {
        yield { data: batch };
        batch = [];
      }
    }
    // The SSE spec drops an event that EOF cuts before its blank line;
    // eventsource-parser's reset({ consume: true }) completes the line but
    // still drops the event. Ending the stream with a blank line delivers it.
    parser.feed(`${decoder.decode()}\n\n`);
    if (batch.length > 0) yield { data: batch, unterminated: true };
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof AgentError) throw err;
    // The connection broke mid-answer (reset, truncated chunked body, ...).
    throw new AgentError('upstream_disconnected', 'the connection to the model broke mid-answer', true);
  } finally {
    signal.removeEventListener('abort', onAbort);
    reader.cancel().catch(() => {}); // release the upstream connection whatever happened
  }
}

/**
 * Parse one event's JSON; a malformed chunk fails the run (retrying may well help).
 *
 * The result is not validated as a whole: providers add fields and leave
 * others out, and neither may fail a run. Each reader names the fields it
 * reads in a type of its own (every field optional, every leaf `unknown`,
 * e.g. `CompletionChunk` in chat/stream.ts), walks it with `?.` and checks
 * each leaf before using it. That holds for any JSON value: `?.` stops at
 * `null`, and a string, number or array has no such field (`undefined`).
 */
export function parseChunk(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new AgentError('upstream_malformed', 'the model sent a chunk that is not valid JSON', true);
  }
}

/**
 * The first `maxBytes` of a response body as text (then the rest is dropped):
 * enough to look into an error answer without trusting its size, or its
 * sender to finish (each read waits at most `idleMs`).
 */
export async function textPrefix(res: Response, maxBytes: number, idleMs: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    while (bytes < maxBytes) {
      const result = await readWithin(reader, idleMs);
      if (result === 'timeout' || result.done) break;
      bytes += result.value.byteLength;
      text += decoder.decode(result.value, { stream: true });
    }
  } catch {
    // A broken error body: what was read is all there is to look at.
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}
