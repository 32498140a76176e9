/**
 * One reader of a run: a cursor over the event log turned into an SSE body.
 *
 * Replay and live delivery are the same step (read what is stored after the
 * cursor, hand it over, advance), so there is no hand-over between them
 * where an event could be lost, doubled or reordered. The body is a pull
 * stream: the reader reads the log only when its client has taken the last
 * chunk, so it never holds more than one batch, and a reader that falls
 * behind simply reads older rows, in larger chunks, when it is ready. The
 * agent never waits for a reader; a reader whose client stops taking
 * chunks (its connection vanished without the runtime noticing) is dropped
 * after `stallMs`.
 *
 * Costs per reader are kept off the per-event path, because one run may
 * have a thousand readers: one timer per reader (re-armed lazily, not per
 * chunk) serves the heartbeat, the stall watchdog and the maximum age, and
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
  /** Drop the reader when its client has not taken a chunk for this long. */
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

/** Start serving the log as a new SSE stream; returns it. */
export function openReader(opts: ReaderOptions): ReadableStream<Uint8Array> {
  const { log } = opts;
  const fanout = fanoutOf(log);
  fanout.readers++;
  let cursor = opts.afterSeq;
  const closeAt = Date.now() + opts.maxAgeMs;
  /** The retry field goes out with the first frames: one chunk, not two. */
  let prefix: Uint8Array | null = encoder.encode(encodeRetry(opts.retryMs));
  /** When the last chunk was handed over (the heartbeat counts from it). */
  let sentAt = Date.now();
  /** A chunk is queued and the client has not asked for the next one since: the stall watchdog's concern. */
  let queued = false;
  /** Set while a pull waits for the log: how the timer or a store ends the wait. */
  let wake: ((why: 'stored' | 'timer') => void) | null = null;
  let forget: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let finished = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  const finish = (how: 'close' | Error) => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    forget?.();
    forget = null;
    wake?.('timer');
    wake = null;
    fanout.readers--;
    if (how === 'close') controller.close();
    else controller.error(how);
    opts.onClose?.();
  };

  /** The next moment the timer has something to judge: a heartbeat, a stall, the maximum age. */
  const dueAt = () =>
    Math.min(
      closeAt,
      wake ? sentAt + opts.heartbeatMs : Number.POSITIVE_INFINITY,
      queued ? sentAt + opts.stallMs : Number.POSITIVE_INFINITY,
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
    if (now >= closeAt) {
      // The client has what it was sent; it resumes from there.
      finish('close');
      return;
    }
    if (queued && now - sentAt >= opts.stallMs) {
      // The client went away without the runtime noticing: error the stream so the runtime releases it.
      finish(new StalledError('reader stalled'));
      return;
    }
    if (wake && now - sentAt >= opts.heartbeatMs) wake('timer');
    arm();
  };

  const hand = (bytes: Uint8Array) => {
    controller.enqueue(bytes);
    sentAt = Date.now();
    queued = true;
    arm();
  };

  /** Wait for the next store, or for the timer (a heartbeat, the maximum age). */
  const waitForLog = () =>
    new Promise<'stored' | 'timer'>((resolve) => {
      wake = resolve;
      forget = onStore(log, fanout, () => resolve('stored'));
      arm();
    }).finally(() => {
      forget?.();
      forget = null;
      wake = null;
    });

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      arm();
    },
    async pull() {
      queued = false;
      for (;;) {
        if (finished) return;
        if (Date.now() >= closeAt) return finish('close');
        const chunk = readChunk(log, cursor, opts.gone);
        if (chunk) {
          cursor = chunk.lastSeq;
          if (prefix) {
            const first = new Uint8Array(prefix.length + chunk.bytes.length);
            first.set(prefix);
            first.set(chunk.bytes, prefix.length);
            prefix = null;
            return hand(first);
          }
          return hand(chunk.bytes);
        }
        if (prefix) {
          // Nothing stored yet: the client still learns the retry interval at once.
          const bytes = prefix;
          prefix = null;
          return hand(bytes);
        }
        // Caught up. `done` is the last event, so an ended run is finished here.
        if (opts.ended() || opts.gone()) return finish('close');
        const why = await waitForLog();
        if (finished) return;
        if (why === 'timer' && Date.now() - sentAt >= opts.heartbeatMs && Date.now() < closeAt) return hand(KEEPALIVE_BYTES);
      }
    },
    cancel() {
      // The client went away; nothing to tell it.
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      forget?.();
      wake?.('timer');
      fanout.readers--;
      opts.onClose?.();
    },
  });
}
