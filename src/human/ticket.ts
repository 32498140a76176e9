/**
 * Start tickets: the embedding site's backend vouches that a person is
 * behind a start (it has a session for them) by signing a short-lived
 * ticket with the secret it shares with this service (`TICKET_SECRET`).
 *
 * Format: `v1.<payload>.<sig>`, where payload is base64url (no padding) of
 * the UTF-8 JSON `{"p":"<profile>","exp":<unix seconds>,"sub"?:"<user id>"}`
 * and sig is base64url(HMAC-SHA256(secret, "v1." + payload)), no padding.
 * `scripts/make-ticket.mjs` makes the same tickets, with no dependencies,
 * for backends to copy; keep the two in step.
 *
 * Only WebCrypto is used, so this module runs in workerd, Node 22 and
 * browsers alike. Tickets are not single-use: a retried POST may reuse one.
 *
 * Clock skew: none is allowed. `exp` is the backend's promise of how long
 * its vouching holds, judged by this service's clock; a backend whose clock
 * runs ahead should keep lifetimes well under TICKET_MAX_LIFETIME_S (the
 * script's default is 300 s), since `exp` more than that ahead of our clock
 * is refused.
 */
import * as z from 'zod/mini';

/**
 * The longest a ticket may live, from the service's now to its `exp`. A
 * ticket is a bearer credential that cannot be revoked (the secret can only
 * be rotated, killing every ticket), so a leaked one must die soon; an hour
 * covers a page left open for a while without making a stolen ticket a
 * lasting pass. A backend makes a new one per page view or per start.
 */
export const TICKET_MAX_LIFETIME_S = 3600;
/**
 * Longer input is malformed before any parsing or crypto. A ticket with a
 * 64-char profile and a 128-char sub is under 350 chars; 2048 leaves room
 * and bounds the work an attacker can make us do.
 */
export const TICKET_MAX_CHARS = 2048;
/** What `sub` (the site's user id) may look like: log- and key-safe. */
export const TICKET_SUB = /^[A-Za-z0-9._:@-]{1,128}$/;
/** Profile names, as PROFILES allows them (src/profiles). */
const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

const VERSION = 'v1';
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** 32 bytes of HMAC-SHA256 in unpadded base64url. */
const SIG_CHARS = 43;

/** Reasons safe to show a caller: they never hold the secret or the expected signature. */
export const TICKET_REASONS = {
  malformed: 'malformed ticket',
  signature: "the ticket's signature does not match",
  expired: 'the ticket has expired',
  tooLong: `the ticket lives longer than ${TICKET_MAX_LIFETIME_S} seconds`,
  otherProfile: 'the ticket is for another agent',
  badSub: "the ticket's sub is not a valid user id",
} as const;

export interface TicketClaims {
  /** The profile (the request's `agent`) the ticket lets a caller start. */
  profile: string;
  /** Unix seconds; the ticket is refused from then on. */
  expiresAt: number;
  /** The site's user id: the service counts limits per `user:<sub>` instead of per IP. */
  sub?: string;
}

export type TicketResult = { ok: true; sub?: string } | { ok: false; reason: string };

// Signed JSON: strict, so a backend's typo ("subj") is refused, not silently ignored.
const Payload = z.strictObject({
  p: z.string(),
  exp: z.int().check(z.gt(0)),
  sub: z.optional(z.string()),
});

/**
 * Make a ticket (what the embedding site's backend does; here for tests and
 * for backends written in TypeScript).
 * @param claims the profile, the expiry (unix seconds) and optionally the user id
 * @param secret TICKET_SECRET; at least 32 random bytes is wise (`openssl rand -base64 32`)
 * @returns `v1.<payload>.<sig>`
 * @throws TypeError for an empty secret, a profile or sub that could never verify, or a bad expiry
 * @example
 * const ticket = await signTicket({ profile: 'docs', expiresAt: Math.floor(Date.now() / 1000) + 300 }, env.TICKET_SECRET);
 */
export async function signTicket(claims: TicketClaims, secret: string): Promise<string> {
  assertSecret(secret);
  if (!PROFILE_NAME.test(claims.profile)) throw new TypeError('profile must match ^[A-Za-z0-9._-]{1,64}$');
  if (!Number.isSafeInteger(claims.expiresAt) || claims.expiresAt <= 0)
    throw new TypeError('expiresAt must be unix seconds (a positive integer)');
  if (claims.sub !== undefined && !TICKET_SUB.test(claims.sub)) throw new TypeError('sub must match ^[A-Za-z0-9._:@-]{1,128}$');
  const json: { p: string; exp: number; sub?: string } = { p: claims.profile, exp: claims.expiresAt };
  if (claims.sub !== undefined) json.sub = claims.sub;
  const signed = `${VERSION}.${base64url(new TextEncoder().encode(JSON.stringify(json)))}`;
  const sig = await crypto.subtle.sign('HMAC', await hmacKey(secret, 'sign'), new TextEncoder().encode(signed));
  return `${signed}.${base64url(new Uint8Array(sig))}`;
}

/**
 * Check a ticket a caller sent for a start of `profile`.
 *
 * Order: shape (no crypto for junk), then the signature, then the claims,
 * so a caller without the secret learns only "malformed" or "signature".
 * @param ticket what the caller sent (any value: non-strings are malformed)
 * @param opts.secret TICKET_SECRET
 * @param opts.profile the profile the caller asked to start
 * @param opts.nowMs the service's clock, ms since the epoch
 * @returns `{ ok: true, sub? }`, or `{ ok: false, reason }` with a reason safe to show
 * @throws TypeError for an empty secret (a configuration mistake, not the caller's)
 */
export async function verifyTicket(ticket: unknown, opts: { secret: string; profile: string; nowMs: number }): Promise<TicketResult> {
  assertSecret(opts.secret);
  if (typeof ticket !== 'string' || ticket.length > TICKET_MAX_CHARS) return refuse('malformed');
  const parts = ticket.split('.');
  if (parts.length !== 3) return refuse('malformed');
  const [version, payload, sig] = parts as [string, string, string];
  if (version !== VERSION || !BASE64URL.test(payload) || sig.length !== SIG_CHARS) return refuse('malformed');
  const sigBytes = fromBase64url(sig);
  if (!sigBytes) return refuse('malformed');

  // crypto.subtle.verify compares in constant time (BoringSSL's CRYPTO_memcmp in
  // workerd, OpenSSL's in Node), and works where timingSafeEqual (a workerd
  // extension) does not.
  const key = await hmacKey(opts.secret, 'verify');
  const good = await crypto.subtle.verify('HMAC', key, sigBytes, new TextEncoder().encode(`${VERSION}.${payload}`));
  if (!good) return refuse('signature');

  const claims = Payload.safeParse(parseJson(fromBase64url(payload)));
  if (!claims.success) return refuse('malformed');
  const { p, exp, sub } = claims.data;
  if (p !== opts.profile) return refuse('otherProfile');
  // Milliseconds, so "now < exp" holds exactly at the second's boundary.
  const expMs = exp * 1000;
  if (!(opts.nowMs < expMs)) return refuse('expired');
  if (expMs > opts.nowMs + TICKET_MAX_LIFETIME_S * 1000) return refuse('tooLong');
  if (sub !== undefined && !TICKET_SUB.test(sub)) return refuse('badSub');
  return sub === undefined ? { ok: true } : { ok: true, sub };
}

function refuse(why: keyof typeof TICKET_REASONS): TicketResult {
  return { ok: false, reason: TICKET_REASONS[why] };
}

function assertSecret(secret: string): void {
  // An empty key would make every ticket forgeable by anyone; Node refuses it anyway.
  if (typeof secret !== 'string' || secret.length === 0) throw new TypeError('the ticket secret is empty');
}

function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

/** JSON of UTF-8 bytes, or undefined for invalid UTF-8 or JSON. */
function parseJson(bytes: Uint8Array | undefined): unknown {
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Strict unpadded base64url: only the canonical spelling decodes (a string
 * whose unused low bits are set, or of impossible length, is undefined).
 */
function fromBase64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  let bin: string;
  try {
    bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    return undefined;
  }
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return base64url(bytes) === text ? bytes : undefined;
}
