/**
 * Idle timeouts for model requests. This one covers the wait before a model
 * has answered at all. Reading the body has
 * its own per-chunk timeout (upstream-sse.ts); this covers the wait for the
 * response itself, where a server that accepted the connection but never
 * sends headers would otherwise hold the run until its deadline (an hour).
 */

export interface FirstByteGuard {
  /** Pass to the upstream call: aborts on the run's signal or on the timeout. */
  signal: AbortSignal;
  /** Call once the response is there; the run's signal keeps aborting it. */
  answered(): void;
  /** True when the timeout (not the run) aborted the call. */
  timedOut(): boolean;
}

/**
 * @param signal the run's signal (cancel, deadline)
 * @param idleMs how long to wait for the response before giving up
 */
export function firstByteGuard(signal: AbortSignal, idleMs: number): FirstByteGuard {
  const controller = new AbortController();
  let expired = false;
  // Forward the run's abort for the whole request, body included.
  const forward = () => controller.abort();
  if (signal.aborted) controller.abort();
  else signal.addEventListener('abort', forward, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, idleMs);
  return {
    signal: controller.signal,
    answered: () => clearTimeout(timer),
    timedOut: () => expired && !signal.aborted,
  };
}

/**
 * A configured idle timeout in ms (a deployment variable), or `fallback`
 * when unset or not a positive integer.
 */
export function idleMsFrom(raw: string | undefined, fallback: number): number {
  const configured = Number(raw);
  return raw !== undefined && Number.isInteger(configured) && configured > 0 ? configured : fallback;
}

/**
 * `promise`, or a rejection as soon as `signal` aborts: for calls that take
 * a signal but may not honour it (a binding we cannot test against here),
 * so that cancel and timeouts never wait on them.
 * @param onLate receives a value that arrived after the abort (to close it)
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        // Nobody is waiting for a value that came after the abort: let the caller release it.
        if (signal.aborted) onLate?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
