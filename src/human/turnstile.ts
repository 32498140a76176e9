/**
 * Turnstile: the token a Cloudflare Turnstile widget produced, checked with
 * siteverify, following Cloudflare's "Server-side validation" page:
 * `POST` form-encoded `secret`, `response`, `remoteip` (optional) and
 * `idempotency_key` (optional, a UUID); the answer is always JSON with a
 * boolean `success` and an `error-codes` list (plus `challenge_ts`,
 * `hostname`, `action`, `cdata` on success). A token is at most 2048
 * characters, lives 300 s and verifies once; a second check of the same
 * token is `timeout-or-duplicate` unless it repeats the first check's
 * `idempotency_key`.
 *
 * Failing closed: anything but a JSON `success: true` is "not verified".
 * When siteverify could not give an answer (timeout, network, non-2xx, not
 * its JSON) the result is `retryable`: the caller may try again with the
 * same token. A `success: false` is Cloudflare's verdict, and the caller
 * needs a new token (except `internal-error`, which the page says may be
 * retried).
 */
import * as z from 'zod/mini';
import { within } from '../lib/timing';

/** Cloudflare: "A Turnstile token can have up to 2048 characters." Longer is never sent. */
export const TURNSTILE_TOKEN_MAX_CHARS = 2048;
/** The whole siteverify exchange (headers and body); a start should not wait longer for a human check. */
export const TURNSTILE_TIMEOUT_MS = 5000;
/** siteverify answers are a few hundred bytes; more is not siteverify. */
const MAX_ANSWER_BYTES = 16 * 1024;
/** Error codes are shown only when they are plain identifiers such as `invalid-input-response`. */
const PLAIN_CODE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** At most this many codes in a reason: the message stays short. */
const MAX_CODES_SHOWN = 4;
/** The codes Cloudflare documents as worth retrying. */
const RETRYABLE_CODES = new Set(['internal-error']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** `remoteip` is an IPv4 or IPv6 address (CF-Connecting-IP); anything else is left out, not sent. */
const IP_ADDRESS = /^[0-9A-Fa-f:.]{2,45}$/;

export type TurnstileResult = { ok: true } | { ok: false; reason: string; retryable: boolean };

export interface TurnstileOptions {
  /** TURNSTILE_SECRET_KEY. */
  secret: string;
  /** TURNSTILE_VERIFY_URL (Cloudflare's siteverify, or a local fake). */
  url: string;
  /** The caller's IP (CF-Connecting-IP), when known. */
  remoteIp?: string;
  /**
   * A UUID sent as `idempotency_key`; repeating it for a retried check of
   * the same token gets the same answer instead of `timeout-or-duplicate`.
   * See `turnstileIdempotencyKey`.
   * @defaultValue a random UUID (the check cannot be repeated)
   */
  idempotencyKey?: string;
  /** For tests: the fetch to use. @defaultValue the global fetch */
  fetch?: typeof fetch;
  /** @defaultValue TURNSTILE_TIMEOUT_MS */
  timeoutMs?: number;
}

const Answer = z.object({
  success: z.boolean(),
  'error-codes': z.optional(z.unknown()),
});

const COULD_NOT = 'the Turnstile check could not be done';

/**
 * Ask siteverify whether `token` is good.
 * @param token what the caller sent as `turnstileToken` (any value: a non-string is refused without a call)
 * @returns `{ ok: true }`, or `{ ok: false, reason, retryable }`; the reason is safe to show a caller
 * @throws TypeError for an empty secret or an idempotencyKey that is not a UUID (configuration or code mistakes)
 * @example
 * const r = await verifyTurnstile(body.turnstileToken, { secret: env.TURNSTILE_SECRET_KEY, url: config.TURNSTILE_VERIFY_URL, remoteIp });
 */
export async function verifyTurnstile(token: unknown, opts: TurnstileOptions): Promise<TurnstileResult> {
  if (typeof opts.secret !== 'string' || opts.secret.length === 0) throw new TypeError('the Turnstile secret is empty');
  if (opts.idempotencyKey !== undefined && !UUID.test(opts.idempotencyKey)) throw new TypeError('idempotencyKey must be a UUID');
  if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'no Turnstile token was sent', retryable: false };
  // Printable ASCII only: real tokens are base64-like, and this keeps junk off the network.
  if (token.length > TURNSTILE_TOKEN_MAX_CHARS || !/^[\x21-\x7e]+$/.test(token)) {
    return { ok: false, reason: 'the Turnstile token is not valid', retryable: false };
  }

  const form = new URLSearchParams();
  form.set('secret', opts.secret);
  form.set('response', token);
  if (opts.remoteIp !== undefined && IP_ADDRESS.test(opts.remoteIp)) form.set('remoteip', opts.remoteIp);
  form.set('idempotency_key', opts.idempotencyKey ?? crypto.randomUUID());

  const timeoutMs = opts.timeoutMs ?? TURNSTILE_TIMEOUT_MS;
  const abort = new AbortController();
  const init: RequestInit = {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: form.toString(),
    // The secret is in the body, and a 307/308 would send it on to wherever the redirect points.
    redirect: 'manual',
    signal: abort.signal,
  };
  const exchange = (async () => {
    const res = await (opts.fetch ? opts.fetch(opts.url, init) : fetch(opts.url, init));
    if (res.status < 200 || res.status > 299) {
      // Nobody reads this body: release the connection.
      res.body?.cancel().catch(() => {});
      return { status: res.status } as const;
    }
    return { status: res.status, text: await readCapped(res) } as const;
  })();
  // `within` as well as the signal: a fetch that ignores its signal must not hang the start.
  const outcome = await within(
    exchange.catch(() => 'failed' as const),
    timeoutMs,
  );
  abort.abort();
  if (outcome === 'timeout') return couldNot('no answer within the time limit');
  if (outcome === 'failed') return couldNot('siteverify could not be reached');
  if (outcome.text === undefined) return couldNot(`siteverify answered HTTP ${outcome.status}`);
  if (outcome.text === null) return couldNot('siteverify answered too much');

  let json: unknown;
  try {
    json = JSON.parse(outcome.text);
  } catch {
    return couldNot('siteverify did not answer JSON');
  }
  const answer = Answer.safeParse(json);
  if (!answer.success) return couldNot('siteverify answered something else');
  if (answer.data.success) return { ok: true };

  const codes = plainCodes(answer.data['error-codes']);
  const retryable = codes.length > 0 && codes.every((c) => RETRYABLE_CODES.has(c));
  const shown = codes.slice(0, MAX_CODES_SHOWN).join(', ');
  return { ok: false, reason: shown ? `the Turnstile check failed: ${shown}` : 'the Turnstile check failed', retryable };
}

/**
 * A UUID derived from `parts` (e.g. the run's requestId and the token), for
 * `idempotencyKey`: a retried start of the same run with the same token
 * gets siteverify's first answer again, while the same token on any other
 * start still meets `timeout-or-duplicate`.
 */
export async function turnstileIdempotencyKey(...parts: string[]): Promise<string> {
  // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
  const text = parts.map((p) => `${p.length}:${p}`).join('|');
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`turnstile-idempotency|${text}`)));
  // RFC 9562 version 8 (custom) with the RFC variant bits: a well-formed UUID.
  hash[6] = (hash[6]! & 0x0f) | 0x80;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = [...hash.slice(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function couldNot(why: string): TurnstileResult {
  return { ok: false, reason: `${COULD_NOT} (${why}); try again`, retryable: true };
}

function plainCodes(codes: unknown): string[] {
  if (!Array.isArray(codes)) return [];
  return codes.filter((c): c is string => typeof c === 'string' && PLAIN_CODE.test(c));
}

/** The body as text, or null when it is over MAX_ANSWER_BYTES. */
async function readCapped(res: Response): Promise<string | null> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}
