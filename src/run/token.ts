/** Run tokens: random secrets, compared in constant time. */

/** 32 random bytes, base64url: 256 bits, unguessable. */
export function newToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
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
