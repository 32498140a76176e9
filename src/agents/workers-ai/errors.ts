/**
 * What a failed Workers AI call means for the run. The binding throws errors
 * whose message starts with an internal code ("3040: Capacity temporarily
 * exceeded, please try again.", sometimes behind "AiError: "); the codes are
 * listed at https://developers.cloudflare.com/workers-ai/platform/errors/.
 * `retryable` is honest: asking again helps only for capacity and timeouts.
 */
import { AgentError } from '../types';

type Kind = [code: string, retryable: boolean, what: string];

const REJECTED: Kind = ['upstream_rejected', false, 'rejected the request'];
const FORBIDDEN: Kind = ['upstream_auth', false, 'refused this account access to the model'];
const KINDS: Record<number, Kind> = {
  5007: ['upstream_rejected', false, 'has no such model'],
  3042: ['upstream_rejected', false, 'has no such model'],
  3003: REJECTED,
  3006: REJECTED,
  3039: REJECTED,
  5004: REJECTED,
  5005: REJECTED,
  5019: REJECTED,
  3023: FORBIDDEN,
  3041: FORBIDDEN,
  5016: FORBIDDEN,
  5018: FORBIDDEN,
  // The daily free allocation is used up: asking again fails until tomorrow.
  3036: ['upstream_rate_limited', false, 'allocation is used up for today'],
  4006: ['upstream_rate_limited', false, 'allocation is used up for today'],
  3040: ['upstream_rate_limited', true, 'is out of capacity'],
  3007: ['upstream_unavailable', true, 'timed out'],
  3008: ['upstream_unavailable', true, 'aborted the request'],
};

/** The AgentError for an error thrown by `env.AI.run` (never echoes its message). */
export function workersAiError(err: unknown, model: string): AgentError {
  const message = err instanceof Error ? err.message : String(err);
  const code = /(?:^|\s)(\d{4}):/.exec(message)?.[1];
  const kind = code ? KINDS[Number(code)] : undefined;
  if (!kind) return new AgentError('upstream_unavailable', `Workers AI could not run ${model}`, true);
  const [agentCode, retryable, what] = kind;
  return new AgentError(agentCode, `Workers AI ${what} (${model}, error ${code})`, retryable);
}
