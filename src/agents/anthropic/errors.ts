/**
 * What an Anthropic failure means for the run. HTTP errors follow the shared
 * conventions of upstream/errors.ts by status (401/403 auth, 429 rate
 * limited and retryable, 408/5xx/529 unavailable and retryable, other 4xx
 * rejected), naming the error's `type` from the body
 * `{"type":"error","error":{"type":"...","message":"..."}}`, never its message.
 *
 * An `error` event inside a 200 stream has no status, only the type; the
 * docs say its `overloaded_error` "would normally correspond to an HTTP 529
 * in a non-streaming context", so each type gets the code and `retryable`
 * its status would get.
 */
import { safeErrorCode, upstreamHttpError } from '../upstream/errors';
import { AgentError } from '../types';

/** How this provider is named in messages. */
export const ANTHROPIC_PROVIDER = 'Anthropic';

/** The HTTP status of each documented error type (https://docs.claude.com/en/api/errors). */
const STATUS_OF_TYPE: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/**
 * The AgentError for an `error` event in the stream.
 * @param error the event's `error` object
 * @param secret the API key, so that a type quoting it is never shown
 */
export function anthropicStreamError(error: unknown, secret?: string): AgentError {
  const type = safeErrorCode(error, secret);
  const status = type === undefined ? undefined : STATUS_OF_TYPE[type];
  const message = `${ANTHROPIC_PROVIDER} reported an error mid-stream${type ? ` (${type})` : ''}`;
  // An unknown type: as for any provider's in-stream error, asking again may well help.
  if (status === undefined) return new AgentError('upstream_error', message, true);
  const { code, retryable } = upstreamHttpError(status, ANTHROPIC_PROVIDER, type);
  return new AgentError(code, message, retryable);
}
