/** Who is calling: a Bearer value that is an API key, or a run token. */
import type { Context } from 'hono';
import type { Config } from './config';
import { tokenMacValid, tokensEqual } from './run/token';
import type { Caller } from './run/protocol';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export function bearer(c: Context): string | undefined {
  const header = c.req.header('Authorization');
  return header ? BEARER.exec(header)?.[1] : undefined;
}

/** True when `value` is one of the configured API keys (constant time per key). */
export async function isApiKey(value: string | undefined, config: Config): Promise<boolean> {
  if (value === undefined || config.API_KEYS.length === 0) return false;
  let match = false;
  // Compare against every key so the timing does not reveal which one matched.
  for (const key of config.API_KEYS) if (await tokensEqual(value, key)) match = true;
  return match;
}

/** What a run token can look like at most: printable ASCII. Anything else opens nothing. */
const PRESENTABLE = /^[\x21-\x7e]{1,512}$/;

/**
 * The caller of a run endpoint. A Bearer header wins over `?token=`
 * (EventSource cannot set headers, so browsers use the query parameter).
 * API keys count only as a header: a URL ends up in logs, and a key opens
 * every run, while a leaked run token opens just its own.
 */
export async function callerOf(c: Context, config: Config, allowQueryToken: boolean): Promise<Caller> {
  const header = bearer(c);
  if (await isApiKey(header, config)) return { apiKey: true };
  const presented = header ?? (allowQueryToken ? c.req.query('token') : undefined);
  // A value with control characters could not be a token, and must not reach an internal header.
  return { token: presented !== undefined && PRESENTABLE.test(presented) ? presented : undefined, apiKey: false };
}

/**
 * Could `token` open run `requestId`? With TOKEN_SECRET every token carries
 * an HMAC over its requestId: one without a valid HMAC is refused here, so a
 * guesser never costs a wake-up of the run's object. Without the secret,
 * only the run's object can tell.
 */
export async function tokenMayOpen(token: string, requestId: string, config: Config): Promise<boolean> {
  return config.TOKEN_SECRET ? tokenMacValid(token, requestId, config.TOKEN_SECRET) : true;
}
