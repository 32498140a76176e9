/**
 * Reconnection delays: exponential backoff with full jitter (a random delay
 * in [0, min(cap, base * 2^attempt)]), so a crowd of clients that lost the
 * same server does not come back in lockstep.
 */
export interface BackoffOptions {
  /** First delay ceiling. @defaultValue 500 */
  initialMs?: number;
  /** Largest delay ceiling. @defaultValue 15000 */
  maxMs?: number;
  /** Give up after this many attempts in a row. @defaultValue 12 */
  maxAttempts?: number;
  /** A connection that stayed up this long resets the attempt count. @defaultValue 5000 */
  resetAfterMs?: number;
}

export const BACKOFF_DEFAULTS: Required<BackoffOptions> = {
  initialMs: 500,
  maxMs: 15_000,
  maxAttempts: 12,
  resetAfterMs: 5_000,
};

export function backoffDelay(attempt: number, opts: Required<BackoffOptions>, random = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.initialMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
