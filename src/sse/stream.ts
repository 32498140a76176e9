/**
 * One reader of a run: a cursor over the event log turned into an SSE body.
 *
 * Replay and live delivery are the same step (read what is stored after the
 * cursor, write it, advance), so there is no hand-over between them
 * where an event could be lost, doubled or reordered. A reader never holds
 * more than one batch: it reads the log only once its last write has been
 * taken, so one that falls behind simply reads older rows, in larger
 * chunks. The agent never waits for a reader; a reader whose writes stop
 * completing (its connection vanished without the runtime noticing) is
 * dropped after `stallMs`.
 *
 * Costs per reader are kept off the per-event path, because one run may
 * have a thousand readers: one timer per reader (re-armed lazily, not per
 * write) serves the heartbeat, the stall watchdog and the maximum age, and
 * readers at the same cursor share one encoded chunk.
 */
import type { EventLog } from '../run/event-log';
import { KEEPALIVE, encodeRetry } from './encode';

/** Bytes of frames handed over per chunk at most; large enough to replay fast, small enough to keep memory flat. */
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

const encoder = new TextEncoder();
const KEEPALIVE_BYTES = encoder.encode(KEEPALIVE);
/** The retry field as sent for the usual intervals, encoded once. */
const RETRY_BYTES = new Map<number, Uint8Array>();

/** The last chunk read from a log: readers at the same cursor after the same store take it as is. */
interface SharedChunk {
  afterSeq: number;
  durableSeq: number;
  bytes: Uint8Array;
  lastSeq: number;
}
const lastChunk = new WeakMap<EventLog, SharedChunk>();

/** Stored frames after `afterSeq`, encoded, or null when there are none (or the log is gone). */
function readChunk(log: EventLog, afterSeq: number, gone: () => boolean): SharedChunk | null {
  if (gone()) return null;
  const cached = lastChunk.get(log);
  if (cached && cached.afterSeq === afterSeq && cached.durableSeq === log.durableSeq) return cached;
  const { text, lastSeq } = log.readAfter(afterSeq, READ_BATCH_BYTES);
  if (!text) return null;
  const chunk = { afterSeq, durableSeq: log.durableSeq, bytes: encoder.encode(text), lastSeq };
  lastChunk.set(log, chunk);
  return chunk;
}

/**
 * Past this many readers of one run, readers are woken together at most
 * every FANOUT_BATCH_MS instead of at every store: each event would
 * otherwise be a chunk per reader at every hop (object, Worker, client),
 * and with a thousand readers those chunks, not the events, are the work.
 * A few readers always get each event at once.
 */
export const FANOUT_READERS = 64;
/** How long readers of a busy run let events gather: under two frames of a 60 Hz display. */
export const FANOUT_BATCH_MS = 25;

/** The readers of one log and their shared, batched wake-up. */
interface Fanout {
  readers: number;
  waiting: Set<() => void>;
  armed: boolean;
}
const fanouts = new WeakMap<EventLog, Fanout>();

function fanoutOf(log: EventLog): Fanout {
  let f = fanouts.get(log);
  if (!f) {
    f = { readers: 0, waiting: new Set(), armed: false };
    fanouts.set(log, f);
  }
  return f;
}

/**
 * Call `wake` after the next store: at once while the run has few readers,
 * else with every other waiting reader, FANOUT_BATCH_MS after the store
 * (one timer for all of them). Returns a function that forgets it.
 */
function onStore(log: EventLog, fanout: Fanout, wake: () => void): () => void {
  if (fanout.readers <= FANOUT_READERS) return log.onNextStore(wake);
  fanout.waiting.add(wake);
  if (!fanout.armed) {
    fanout.armed = true;
    log.onNextStore(() =>
      setTimeout(() => {
        fanout.armed = false;
        const waiting = [...fanout.waiting];
        fanout.waiting.clear();
        for (const w of waiting) w();
      }, FANOUT_BATCH_MS),
    );
  }
  return () => fanout.waiting.delete(wake);
}

function retryBytes(ms: number): Uint8Array {
  let bytes = RETRY_BYTES.get(ms);
  if (!bytes) {
    bytes = encoder.encode(encodeRetry(ms));
    RETRY_BYTES.set(ms, bytes);
  }
  return bytes;
}

/** Start pumping the log into a new SSE stream; returns its readable side. */
export function openReader(opts: ReaderOptions): ReadableStream<Uint8Array> {
  // An identity TransformStream, written to: measured faster to the first
  // event over the RPC hop than a pull-based ReadableStream (bench/, docs/bench.md).
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  void pump(writable.getWriter(), opts);
  return readable;
}

async function pump(writer: WritableStreamDefaultWriter<Uint8Array>, opts: ReaderOptions): Promise<void> {
  const { log } = opts;
  const fanout = fanoutOf(log);
  fanout.readers++;
  let cursor = opts.afterSeq;
  const closeAt = Date.now() + opts.maxAgeMs;
  /** The retry field goes out with the first frames: one write, not two (a write waits for the reader to take the one before). */
  let prefix: Uint8Array | null = retryBytes(opts.retryMs);
  /** When the last write started (the heartbeat and the stall watchdog count from it). */
  let sentAt = Date.now();
  /** Set while a write is in flight: the watchdog rejects it when it stalls. */
  let stall: ((err: Error) => void) | null = null;
  /** Set while the reader waits for the log: how the timer or a store ends the wait. */
  let wake: ((why: 'stored' | 'timer') => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let finished = false;

  /** The next moment the timer has something to judge: a heartbeat, a stall, the maximum age. */
  const dueAt = () =>
    Math.min(
      closeAt,
      wake ? sentAt + opts.heartbeatMs : Number.POSITIVE_INFINITY,
      stall ? sentAt + opts.stallMs : Number.POSITIVE_INFINITY,
    );
  // An armed timer that fires too early just re-arms: it is moved only when something falls due sooner.
  const arm = () => {
    const at = dueAt();
    if (finished || at >= timerAt) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(onTimer, Math.max(0, at - Date.now()));
  };
  const onTimer = () => {
    timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    if (stall && now - sentAt >= opts.stallMs) stall(new StalledError('reader stalled'));
    else if (wake && (now >= closeAt || now - sentAt >= opts.heartbeatMs)) wake('timer');
    arm();
  };

  /** `promise`, or a StalledError once it has been pending for stallMs. */
  const guard = <T>(promise: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      sentAt = Date.now();
      stall = reject;
      arm();
      promise.then(resolve, reject).finally(() => {
        stall = null;
      });
    });
  const send = (bytes: Uint8Array) => guard(writer.write(bytes));

  /** Wait for the next store, or for the timer (a heartbeat, the maximum age). */
  const waitForLog = () => {
    let forget: (() => void) | null = null;
    return new Promise<'stored' | 'timer'>((resolve) => {
      wake = resolve;
      forget = onStore(log, fanout, () => resolve('stored'));
      arm();
    }).finally(() => {
      forget?.();
      wake = null;
    });
  };

  try {
    for (;;) {
      if (Date.now() >= closeAt) break;
      const chunk = readChunk(log, cursor, opts.gone);
      if (chunk) {
        cursor = chunk.lastSeq;
        if (prefix) {
          const first = new Uint8Array(prefix.length + chunk.bytes.length);
          first.set(prefix);
          first.set(chunk.bytes, prefix.length);
          prefix = null;
          await send(first);
        } else await send(chunk.bytes);
        continue;
      }
      if (prefix) {
        // Nothing stored yet: the client still learns the retry interval at once.
        const bytes = prefix;
        prefix = null;
        await send(bytes);
        continue;
      }
      // Caught up. `done` is the last event, so an ended run is finished here.
      if (opts.ended() || opts.gone()) break;
      const why = await waitForLog();
      if (why === 'timer' && Date.now() - sentAt >= opts.heartbeatMs && Date.now() < closeAt) await send(KEEPALIVE_BYTES);
    }
    await guard(writer.close());
  } catch {
    // The client went away (write rejected) or stalled; nothing to tell it.
    // Abort so the runtime releases the connection; it may already be errored.
    writer.abort().catch(() => {});
  } finally {
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    fanout.readers--;
    opts.onClose?.();
  }
}
