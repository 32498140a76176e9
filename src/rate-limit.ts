/**
 * Moved to ./limits/rate-limit. This module stays until the routes import
 * from there; its limitStarts takes the key from CF-Connecting-IP when the
 * caller passes none, as before.
 */
import type { Context } from 'hono';
import type { AppEnv } from './env';
import { clientKey } from './limits/client-key';
import { limitStarts as limitStartsByKey } from './limits/rate-limit';

export { AUTH_PERIOD_S, START_PERIOD_S, limitFailedAuth } from './limits/rate-limit';

/** @deprecated import `limitStarts(c, key)` from ./limits/rate-limit and pass the client key. */
export function limitStarts(
  c: Context<{ Bindings: AppEnv }>,
  key: string | null = clientKey(c.req.header('CF-Connecting-IP')),
): Promise<void> {
  return limitStartsByKey(c, key);
}
