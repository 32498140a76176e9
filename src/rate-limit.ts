/**
 * Per-client-IP limit on starting runs: a run costs an agent (and, with a
 * hosted model, money), so an open endpoint for an embedded widget needs a
 * brake. Uses the Workers Rate Limiting binding when configured.
 */
import type { Context } from 'hono';
import type { AppEnv } from './env';
import { ApiError } from './errors';

/** The limiter's period (wrangler.toml `simple.period`): how long a refused client should wait. */
const RETRY_AFTER_S = 10;

/** Loopback is never a client coming through Cloudflare's edge: local dev, tests, benchmarks. */
function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === '::ffff:127.0.0.1';
}

export async function limitStarts(c: Context<{ Bindings: AppEnv }>): Promise<void> {
  const limiter = c.env.START_LIMITER as RateLimit | undefined;
  if (!limiter) return;
  // Set by Cloudflare's edge (and by wrangler dev) to the client's address.
  const ip = c.req.header('CF-Connecting-IP');
  if (!ip || isLoopback(ip)) return;
  const { success } = await limiter.limit({ key: ip });
  if (!success) {
    throw new ApiError('rate_limited', `too many runs started from this address; retry in ${RETRY_AFTER_S} s`, undefined, {
      'Retry-After': String(RETRY_AFTER_S),
    });
  }
}
