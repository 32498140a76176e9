/**
 * Small timing helpers shared by the Worker and the browser client (both
 * bundles take just what they use).
 */

/** Wait `ms`, or less if `signal` aborts first; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * `promise`'s outcome, or `'timeout'` when it has not settled within `ms`
 * (the promise itself goes on; the caller decides what to abandon).
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * One `reader.read()`, or `'timeout'` when no chunk arrives within `ms`:
 * the way to notice a connection that went silent without an error.
 */
export function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T> | 'timeout'> {
  return within(reader.read(), ms);
}
