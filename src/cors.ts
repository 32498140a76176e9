/**
 * CORS from `ALLOWED_ORIGINS`: unset means same origin only (no CORS
 * headers at all). The widget needs `Authorization` and `Last-Event-ID`
 * allowed and the run's and chat's identity headers exposed.
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { getConfig } from './config';
import type { AppEnv } from './env';

/** Browsers cache a preflight this long (seconds); Chromium caps it at 7200. */
const PREFLIGHT_MAX_AGE_S = 600;

export function corsFromConfig(): MiddlewareHandler<{ Bindings: AppEnv }> {
  return async (c, next) => {
    const allowed = getConfig(c.env).ALLOWED_ORIGINS;
    if (allowed.length === 0) return next();
    const handler = cors({
      origin: (origin) => (allowed.includes('*') ? '*' : allowed.includes(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'Authorization', 'Last-Event-ID', 'Accept'],
      // The chat headers too: a streamed turn's start hands over the chat's token only in X-Chat-Token.
      exposeHeaders: ['X-Request-Id', 'X-Run-Token', 'Retry-After', 'X-Chat-Id', 'X-Chat-Token'],
      maxAge: PREFLIGHT_MAX_AGE_S,
    });
    return handler(c, next);
  };
}
