/**
 * Reading an upstream's SSE body into whole messages (data, event and id:
 * upstream/sse.ts keeps only the data), per network chunk, with an idle
 * timeout and a bound on one message's size. Parsing is eventsource-parser's.
 */
import { createParser } from 'eventsource-parser';
import { readWithin } from '../../lib/timing';
import { AgentError } from '../types';
import type { UpstreamMessage } from './formats/format';

/**
 * Characters one upstream message may buffer. Far above any real chunk; it
 * bounds the memory an upstream that never ends its line can take.
 */
export const MAX_MESSAGE_CHARS = 8 * 1024 * 1024;

/**
 * Yield, per network chunk, the messages it completed. Throws AgentError
 * `upstream_timeout` when no byte arrives for `idleMs` (heartbeats count:
 * they prove the upstream alive), `upstream_disconnected` when the
 * connection breaks, `upstream_malformed` for an oversized message.
 * Returns quietly when `signal` aborts.
 */
export async function* upstreamMessages(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  idleMs: number,
): AsyncGenerator<UpstreamMessage[]> {
  let batch: UpstreamMessage[] = [];
  let oversized = false;
  const parser = createParser({
    onEvent: (event) => {
      const message: UpstreamMessage = { data: event.data };
      if (event.id !== undefined) message.id = event.id;
      if (event.event !== undefined) message.event = event.event;
      batch.push(message);
    },
    onError: (err) => {
      if (err.type === 'max-buffer-size-exceeded') oversized = true;
    },
    maxBufferSize: MAX_MESSAGE_CHARS,
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const result = await readWithin(reader, idleMs);
      if (signal.aborted) return;
      if (result === 'timeout') throw new AgentError('upstream_timeout', `the upstream sent nothing for ${idleMs} ms`, true);
      if (result.done) break;
      parser.feed(decoder.decode(result.value, { stream: true }));
      // Messages completed before the oversized one are still delivered.
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
      if (oversized) throw new AgentError('upstream_malformed', `the upstream sent a message over ${MAX_MESSAGE_CHARS} characters`, false);
    }
    // A last message without its blank line: the spec drops it; the format decides (see `unterminated`).
    parser.feed(`${decoder.decode()}\n\n`);
    if (batch.length > 0) yield batch.map((message) => ({ ...message, unterminated: true as const }));
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof AgentError) throw err;
    // The connection broke mid-stream (reset, truncated chunked body, ...).
    throw new AgentError('upstream_disconnected', 'the connection to the upstream broke mid-stream', true);
  } finally {
    signal.removeEventListener('abort', onAbort);
    reader.cancel().catch(() => {}); // release the upstream connection whatever happened
  }
}
