/**
 * A turn's run as a UI message stream body: the run's events, read from its
 * object (and reopened when its reader closes early), mapped chunk by chunk.
 * Pull-based: nothing is read from the run faster than the client takes it,
 * and a client that goes away cancels the run's reader.
 */
import { encodeComment } from '../sse/encode';
import type { Caller, ReadOutcome } from '../run/protocol';
import { KEEPALIVE, runEvents, type RunReader } from './run-events';
import { UI_STREAM_END, encodeUiChunk, uiMessageMapper, type UiChunk } from './ui-message-stream';

/**
 * @param first the run's reader, already opened from seq 0
 * @param messageId the assistant message's id (stable across replays)
 * @param prefix chunks sent before the run's (the chat's transient `data-chat` part)
 */
export function uiStreamOfRun(
  run: RunReader,
  caller: Caller,
  first: Extract<ReadOutcome, { kind: 'stream' }>,
  messageId: string,
  prefix: UiChunk[] = [],
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  // A turn's answer is named by its run: the message id is the requestId.
  const mapper = uiMessageMapper(messageId, messageId);
  const events = runEvents(run, caller, 0, first);
  let pending = prefix.map(encodeUiChunk).join('');
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Enqueue something on every pull: a pull that enqueues nothing is not called again.
      while (pending === '') {
        const next = await events.next();
        if (next.done) {
          const tail = mapper.ended ? [] : mapper.abandon(next.value === 'gone' ? "the turn's run is gone" : 'the run ended early');
          controller.enqueue(encoder.encode(tail.map(encodeUiChunk).join('') + UI_STREAM_END));
          controller.close();
          return;
        }
        pending = next.value === KEEPALIVE ? encodeComment('keepalive') : mapper.map(next.value).map(encodeUiChunk).join('');
      }
      controller.enqueue(encoder.encode(pending));
      pending = '';
    },
    async cancel() {
      await events.return('gone');
    },
  });
}
