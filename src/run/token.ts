/**
 * Run tokens: random secrets, stored only as hashes, compared in constant
 * time. With TOKEN_SECRET a token also carries an HMAC over its requestId,
 * so the Worker refuses a forged one without waking the run's object.
 */

/** Bytes of the HMAC kept in a token: 128 bits is beyond guessing, and keeps tokens short. */
const MAC_BYTES = 16;

/**
 * A new run token: 32 random bytes, base64url (256 bits); with `secret`,
 * `<random>.<mac>` where mac = HMAC-SHA256(secret, requestId + "\n" + random).
 */
export async function newToken(requestId: string, secret?: string): Promise<string> {
  const random = base64url(crypto.getRandomValues(new Uint8Array(32)));
  if (!secret) return random;
  return `${random}.${await tokenMac(secret, requestId, random)}`;
}

/**
 * True when `token` could have been made for `requestId` with `secret`.
 * Checked in the Worker: a false answer costs no Durable Object wake-up.
 */
export async function tokenMacValid(token: string, requestId: string, secret: string): Promise<boolean> {
  const dot = token.indexOf('.');
  if (dot <= 0) return false;
  const expected = await tokenMac(secret, requestId, token.slice(0, dot));
  return tokensEqual(token.slice(dot + 1), expected);
}

async function tokenMac(secret: string, requestId: string, random: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, enc.encode(`${requestId}\n${random}`));
  return base64url(new Uint8Array(mac).subarray(0, MAC_BYTES));
}

/** What a run stores instead of its token (and its start secret): `sha256:<base64url>`. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
  return `sha256:${base64url(new Uint8Array(digest))}`;
}

/** Does `presented` hash to `stored`? Constant time over the hashes. */
export async function matchesHash(presented: string, stored: string): Promise<boolean> {
  const enc = new TextEncoder();
  const a = enc.encode(await hashSecret(presented));
  const b = enc.encode(stored);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/** A server-made requestId: not a secret, but unguessable so runs cannot be enumerated. */
export function newRequestId(): string {
  return `run_${base64url(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/**
 * Constant-time comparison. Hashing first makes both inputs the same length,
 * so neither the content nor the length of the secret leaks through timing.
 */
export async function tokensEqual(presented: string, expected: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest('SHA-256', enc.encode(presented)),
    crypto.subtle.digest('SHA-256', enc.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
