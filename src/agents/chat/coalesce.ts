/**
 * Merging answer text across time. A model that sends each token in its own
 * network read (every 2-30 ms) would otherwise cost one event and one SQLite
 * row per token. The first piece after a quiet spell goes out at once; pieces
 * arriving within `windowMs` of the last delta wait for that window to close
 * and go out together. 16 ms is one display frame: text held for less than a
 * frame could not have been seen any sooner.
 */
import type { AgentEvent } from '../../events';
import { within } from '../../lib/timing';
import type { Step } from './answer';

export const COALESCE_MS = 16;

export interface CoalesceOptions {
  messageId: string;
  windowMs: number;
  /** The run's signal: after an abort nothing more is emitted (the run has already ended). */
  signal: AbortSignal;
}

/**
 * Turn batches of steps into events: text pieces merged into `delta` events
 * as above, other events passed through in order. Held text goes out before
 * any other event, at the end, and before an error from `source` is rethrown
 * (the log keeps every piece the model sent before it failed).
 *
 * No timer outlives a call: the next batch is raced against the window's end.
 * The caller must abort `source`'s reading when this generator is closed early
 * (a batch may still be in flight then).
 */
export async function* coalesceText(source: AsyncIterator<Step[]>, opts: CoalesceOptions): AsyncGenerator<AgentEvent> {
  let pending = '';
  let lastDeltaAt = -Infinity;
  let next: Promise<IteratorResult<Step[]>> | undefined;
  const delta = (): AgentEvent => {
    const text = pending;
    pending = '';
    lastDeltaAt = Date.now();
    return { type: 'delta', messageId: opts.messageId, text };
  };
  try {
    for (;;) {
      next ??= source.next();
      let got: IteratorResult<Step[]> | 'window';
      try {
        got = pending ? await untilWindowEnds(next, lastDeltaAt + opts.windowMs - Date.now()) : await next;
      } catch (err) {
        next = undefined;
        if (pending && !opts.signal.aborted) yield delta();
        throw err;
      }
      if (opts.signal.aborted) return;
      if (got === 'window') {
        yield delta(); // the next batch stays in flight
        continue;
      }
      next = undefined;
      if (got.done) break;
      for (const step of got.value) {
        if (typeof step === 'string') pending += step;
        else {
          if (pending) yield delta();
          yield step;
        }
      }
      if (pending && Date.now() - lastDeltaAt >= opts.windowMs) yield delta();
    }
    if (pending && !opts.signal.aborted) yield delta();
  } finally {
    // Closed early with a read in flight: it ends when the caller aborts the
    // reading; only then can the source clean up. Otherwise clean up now.
    if (next)
      void next
        .then(
          () => source.return?.(),
          () => {},
        )
        .catch(() => {});
    else await source.return?.();
  }
}

/** `promise`, or 'window' when it has not settled before the window (`ms` from now) closes. */
async function untilWindowEnds<T>(promise: Promise<T>, ms: number): Promise<T | 'window'> {
  if (ms <= 0) return 'window';
  const result = await within(promise, ms);
  return result === 'timeout' ? 'window' : result;
}
