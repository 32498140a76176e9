/**
 * Rate limits per client over the Workers Rate Limiting bindings: run starts
 * (a run costs an agent and, with a hosted model, money) and failed
 * authentications (guessing run tokens or start secrets). The bindings count
 * per Cloudflare location and are eventually consistent: a brake on bursts,
 * not an exact quota; the daily budgets in ./usage are the exact part.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { ApiError } from '../errors';
import { warnMissingBinding } from './missing-binding';

/**
 * START_LIMITER's `simple.period` in wrangler.toml (keep the two equal): a
 * refused client can start again once the current window is over.
 */
export const START_PERIOD_S = 10;

/**
 * AUTH_LIMITER's `simple.period` in wrangler.toml (keep the two equal);
 * its limit there is 20 failed authentications per period.
 */
export const AUTH_PERIOD_S = 60;

/**
 * Count one run start for `key`; throws `429 rate_limited` with Retry-After
 * when the client is over START_LIMITER's limit.
 * @param key the client's key (`clientKey()`, or `user:<id>`); null = not limited (loopback, API key)
 */
export async function limitStarts(c: Context<{ Bindings: AppEnv }>, key: string | null): Promise<void> {
  if (key === null) return;
  const limited = await overLimit(c.env.START_LIMITER as RateLimit | undefined, 'START_LIMITER', 'run starts per client', key);
  if (limited) {
    throw new ApiError('rate_limited', `too many runs started by this client; retry in ${START_PERIOD_S} s`, undefined, {
      'Retry-After': String(START_PERIOD_S),
    });
  }
}

/**
 * Count one FAILED authentication for `key` (call it only after a token,
 * start secret or ticket was refused, never for a success). Over the limit,
 * the route answers `429 rate_limited` with `Retry-After` instead of its
 * 401/404/409, so a guesser stops learning anything for a while.
 * @param key the client's key; null = not limited
 * @returns the seconds to retry after when over the limit, else null
 */
export async function limitFailedAuth(env: AppEnv, key: string | null): Promise<number | null> {
  if (key === null) return null;
  const limiter = (env as { AUTH_LIMITER?: RateLimit }).AUTH_LIMITER;
  const limited = await overLimit(limiter, 'AUTH_LIMITER', 'failed authentications per client', key);
  return limited ? AUTH_PERIOD_S : null;
}

async function overLimit(limiter: RateLimit | undefined, binding: string, what: string, key: string): Promise<boolean> {
  if (!limiter) {
    warnMissingBinding(binding, what);
    return false;
  }
  try {
    const { success } = await limiter.limit({ key });
    return !success;
  } catch (err) {
    // Fail open: an outage of the limiter service must not take the whole
    // service down with it; the usage objects still bound running runs and
    // daily budgets. Log the kind only (the message could hold the key).
    console.error(`${binding} failed (${(err as Error)?.name ?? typeof err}); not limiting this request`);
    return false;
  }
}
