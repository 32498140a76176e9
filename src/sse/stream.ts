/**
 * One reader of a run: a cursor over the event log turned into an SSE body.
 *
 * Replay and live delivery are the same loop (read what is stored after the
 * cursor, write it, advance), so there is no hand-over between them where
 * an event could be lost, doubled or reordered. A reader never holds more
 * than one batch: when it falls behind it simply reads older rows again.
 * The agent never waits for a reader; a reader whose writes stop completing
 * (its connection vanished without the runtime noticing) is dropped after
 * `stallMs`.
 */
import type { EventLog } from '../run/event-log';
import { within } from '../lib/timing';
import { KEEPALIVE, encodeRetry } from './encode';

/** Bytes of frames written per chunk; large enough to replay fast, small enough to keep memory flat. */
export const READ_BATCH_BYTES = 64 * 1024;

export interface ReaderOptions {
  log: EventLog;
  afterSeq: number;
  retryMs: number;
  heartbeatMs: number;
  /** Drop the reader when one write has not completed for this long. */
  stallMs: number;
  /**
   * Close the stream (without `done`) once it has been open this long: a
   * connection is not held forever, and the client resumes with Last-Event-ID.
   */
  maxAgeMs: number;
  /** True once the run has ended (its `done` is appended). */
  ended: () => boolean;
  /** True when the run's log is gone (deleted after its TTL). */
  gone: () => boolean;
  onClose?: () => void;
}

export const SSE_HEADERS: Record<string, string> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
};

class StalledError extends Error {
  override readonly name = 'StalledError';
}

/** Start pumping the log into a new SSE stream; returns its readable side. */
export function openReader(opts: ReaderOptions): ReadableStream<Uint8Array> {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  void pump(writable.getWriter(), opts);
  return readable;
}

async function pump(writer: WritableStreamDefaultWriter<Uint8Array>, opts: ReaderOptions): Promise<void> {
  const encoder = new TextEncoder();
  const { log } = opts;
  let cursor = opts.afterSeq;
  const closeAt = Date.now() + opts.maxAgeMs;
  const send = (text: string) => withTimeout(writer.write(encoder.encode(text)), opts.stallMs);
  try {
    await send(encodeRetry(opts.retryMs));
    for (;;) {
      const left = closeAt - Date.now();
      if (left <= 0) break;
      const { text, lastSeq } = log.readAfter(cursor, READ_BATCH_BYTES);
      if (text) {
        await send(text);
        cursor = lastSeq;
        continue;
      }
      // Caught up. `done` is the last event, so an ended run is finished here.
      if (opts.ended() || opts.gone()) break;
      const woke = await log.waitFor(cursor, Math.min(opts.heartbeatMs, left));
      if (!woke && Date.now() < closeAt) await send(KEEPALIVE);
    }
    await withTimeout(writer.close(), opts.stallMs);
  } catch {
    // The client went away (write rejected) or stalled; nothing to tell it.
    // Abort so the runtime releases the connection; it may already be errored.
    writer.abort().catch(() => {});
  } finally {
    opts.onClose?.();
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  const result = await within(promise, ms);
  if (result === 'timeout') throw new StalledError('reader stalled');
  return result;
}
