/**
 * Retrying a Durable Object call that failed for a reason the runtime calls
 * passing. workerd marks such errors `retryable` (the object was reset by a
 * deploy, moved, or its connection broke) and `overloaded` when the object
 * is too busy: retrying an overloaded object only adds to its queue, so it
 * is never retried. Only idempotent calls may be retried: the caller says
 * so by using this at all.
 */

/** Attempts in all, the first included: a reset object is back within one or two. */
export const DO_ATTEMPTS = 3;
/** The first retry waits up to this long (full jitter: anywhere from 0). */
export const DO_RETRY_BASE_MS = 50;
/** No retry waits longer than this; a request should fail fast rather than hang. */
export const DO_RETRY_MAX_MS = 500;

export interface RetryOptions {
  /** @defaultValue DO_ATTEMPTS */
  attempts?: number;
  /** @defaultValue DO_RETRY_BASE_MS */
  baseMs?: number;
  /** @defaultValue DO_RETRY_MAX_MS */
  maxMs?: number;
  /** Returns [0, 1); replaced in tests. @defaultValue Math.random */
  random?: () => number;
  /** Waits `ms`; replaced in tests. @defaultValue setTimeout */
  wait?: (ms: number) => Promise<void>;
}

/** The fields workerd sets on an error a Durable Object call threw. */
interface DurableObjectErrorShape {
  retryable?: unknown;
  overloaded?: unknown;
}

/**
 * True for an error workerd says may succeed if tried again, and not
 * because the object is overloaded.
 * @example isRetryable(Object.assign(new Error('reset'), { retryable: true })) // true
 */
export function isRetryable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { retryable, overloaded } = err as DurableObjectErrorShape;
  return retryable === true && overloaded !== true;
}

/**
 * The wait before retry number `retry` (1 for the first): full jitter over
 * an exponential cap, so callers that failed together do not come back
 * together.
 */
export function retryDelayMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** (retry - 1)));
}

/**
 * Run `call` until it succeeds, throws an error that is not retryable, or
 * has been tried `attempts` times (then its last error is thrown). `call`
 * gets the attempt number (0 first) and should make a fresh stub each time:
 * after an exception a stub may be broken for good.
 */
export async function withRetry<T>(call: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? DO_ATTEMPTS;
  const baseMs = options.baseMs ?? DO_RETRY_BASE_MS;
  const maxMs = options.maxMs ?? DO_RETRY_MAX_MS;
  const random = options.random ?? Math.random;
  const wait = options.wait ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(attempt);
    } catch (err) {
      if (attempt + 1 >= attempts || !isRetryable(err)) throw err;
      await wait(retryDelayMs(attempt + 1, baseMs, maxMs, random));
    }
  }
}
