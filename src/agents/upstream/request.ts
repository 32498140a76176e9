/**
 * One request to an upstream (a model API or a relayed backend), the same way
 * for every agent: bounded by the first-byte timeout, redirects refused, and
 * network failures reported without the fetch error's text (it can name the
 * URL). Each caller words the messages for its own setting.
 */
import { AgentError } from '../types';
import { firstByteGuard } from './timeouts';

export interface UpstreamWords {
  /** `upstream_timeout` when nothing answered within `ms`. */
  timeout: (ms: number) => string;
  /** `upstream_unreachable`: which setting to check. */
  unreachable: string;
  /** `upstream_rejected` on a 3xx. */
  redirects: string;
}

/**
 * The response (any status but 3xx), or null when the run's `signal` aborted
 * the request. The body is still to be read; `signal` keeps aborting it.
 */
export async function requestUpstream(
  url: URL | string,
  init: { method: string; headers: Record<string, string>; body?: string },
  signal: AbortSignal,
  idleMs: number,
  words: UpstreamWords,
): Promise<Response | null> {
  const guard = firstByteGuard(signal, idleMs);
  let res: Response;
  try {
    // A redirect is not followed: a POST turned into a GET loses the request,
    // and credentials go only where the deployment said.
    res = await fetch(url, { ...init, signal: guard.signal, redirect: 'manual' });
  } catch {
    if (signal.aborted) return null;
    if (guard.timedOut()) throw new AgentError('upstream_timeout', words.timeout(idleMs), true);
    throw new AgentError('upstream_unreachable', words.unreachable, true);
  } finally {
    guard.answered();
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => {});
    throw new AgentError('upstream_rejected', words.redirects, false);
  }
  return res;
}
