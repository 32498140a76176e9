/**
 * Upstream failures as AgentErrors, with `retryable` set honestly and
 * messages that never echo upstream text: OpenAI's 401 message quotes part
 * of the key, and other servers may quote the request.
 */
import { AgentError } from '../types';

/** Machine codes like `model_not_found` or `context_length_exceeded`; nothing free-form. */
const SAFE_CODE = /^[a-z0-9_.-]{1,64}$/;

/**
 * The provider's own error code (`error.code`, else `error.type`) when it is
 * a plain identifier, worth showing: it says which fix applies. Never the
 * message. A code that looks like a piece of the key is dropped too.
 */
export function safeErrorCode(error: unknown, secret?: string): string | undefined {
  if (!error || typeof error !== 'object') return undefined;
  const { code, type } = error as { code?: unknown; type?: unknown };
  for (const candidate of [code, type]) {
    if (typeof candidate !== 'string' || !SAFE_CODE.test(candidate)) continue;
    if (secret && (candidate.includes(secret) || (candidate.length >= 4 && secret.includes(candidate)))) continue;
    return candidate;
  }
  return undefined;
}

/** The safe code of a JSON error body (`{"error": {...}}`), if any. */
export function errorCodeInBody(body: string, secret?: string): string | undefined {
  try {
    return safeErrorCode((JSON.parse(body) as { error?: unknown } | null)?.error, secret);
  } catch {
    return undefined;
  }
}

/**
 * Upstream HTTP failures: auth and bad requests will fail again; rate limits
 * and server errors may not.
 * @param code a code from `safeErrorCode`, shown in the message
 */
export function upstreamHttpError(status: number, provider: string, code?: string): AgentError {
  const what = code ? `HTTP ${status}: ${code}` : `HTTP ${status}`;
  if (status === 401 || status === 403) {
    return new AgentError('upstream_auth', `${provider} refused the credentials (${what}); check the API key`, false);
  }
  if (status === 429) {
    // OpenAI says 429 both for "slow down" and for "out of credit"; asking again helps only with the first.
    return new AgentError('upstream_rate_limited', `${provider} is rate limiting (${what})`, code !== 'insufficient_quota');
  }
  if (status === 408 || status >= 500) return new AgentError('upstream_unavailable', `${provider} failed (${what})`, true);
  return new AgentError('upstream_rejected', `${provider} rejected the request (${what})`, false);
}
