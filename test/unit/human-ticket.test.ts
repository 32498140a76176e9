// Start tickets inside workerd: the format byte for byte, every refusal, junk of every shape.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TICKET_MAX_CHARS, TICKET_MAX_LIFETIME_S, TICKET_REASONS, signTicket, verifyTicket } from '../../src/human/ticket';

const SECRET = 'test-ticket-secret-0123456789abcdef';
const EXP = 1_700_000_300;
/** 300 s before EXP, on a whole second. */
const NOW_MS = (EXP - 300) * 1000;
const opts = (extra: Partial<{ secret: string; profile: string; nowMs: number }> = {}) => ({
  secret: SECRET,
  profile: 'docs',
  nowMs: NOW_MS,
  ...extra,
});

// Made with Node's crypto.createHmac, independently of the module under test.
const VECTOR = 'v1.eyJwIjoiZG9jcyIsImV4cCI6MTcwMDAwMDMwMH0.JI0EO8fgv6ojDSGab03RvliA4ok1ab2-n2-umHOG5Ak';
const VECTOR_SUB = 'v1.eyJwIjoiZG9jcyIsImV4cCI6MTcwMDAwMDMwMCwic3ViIjoidXNlci00MiJ9.Bs35eW52T51QUtjeTUB0VbpMKVW9W00DYLodH8U9j_Q';

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const b64urlText = (text: string) => b64url(new TextEncoder().encode(text));

/** Sign any payload bytes as a v1 ticket, bypassing signTicket's checks. */
async function signRaw(payloadB64: string, secret = SECRET): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signed = `v1.${payloadB64}`;
  return `${signed}.${b64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(signed))))}`;
}
const signJson = (json: string, secret?: string) => signRaw(b64urlText(json), secret);

const refused = (reason: string) => ({ ok: false, reason });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('signTicket', () => {
  it('makes the documented format byte for byte', async () => {
    expect(await signTicket({ profile: 'docs', expiresAt: EXP }, SECRET)).toBe(VECTOR);
    expect(await signTicket({ profile: 'docs', expiresAt: EXP, sub: 'user-42' }, SECRET)).toBe(VECTOR_SUB);
  });

  it('refuses claims that could never verify, and an empty secret', async () => {
    await expect(signTicket({ profile: 'docs', expiresAt: EXP }, '')).rejects.toThrow(TypeError);
    await expect(signTicket({ profile: 'no spaces', expiresAt: EXP }, SECRET)).rejects.toThrow(/profile/);
    await expect(signTicket({ profile: '', expiresAt: EXP }, SECRET)).rejects.toThrow(/profile/);
    await expect(signTicket({ profile: 'x'.repeat(65), expiresAt: EXP }, SECRET)).rejects.toThrow(/profile/);
    for (const expiresAt of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      await expect(signTicket({ profile: 'docs', expiresAt }, SECRET)).rejects.toThrow(/expiresAt/);
    }
    for (const sub of ['', 'has space', 'x'.repeat(129), 'ünï', 'a/b']) {
      await expect(signTicket({ profile: 'docs', expiresAt: EXP, sub }, SECRET)).rejects.toThrow(/sub/);
    }
  });
});

describe('verifyTicket', () => {
  it('accepts a ticket it signed, and says who it names', async () => {
    expect(await verifyTicket(await signTicket({ profile: 'docs', expiresAt: EXP }, SECRET), opts())).toEqual({ ok: true });
    const withSub = await signTicket({ profile: 'docs', expiresAt: EXP, sub: 'user:42@example.com' }, SECRET);
    expect(await verifyTicket(withSub, opts())).toEqual({ ok: true, sub: 'user:42@example.com' });
  });

  it('accepts the independently made vectors', async () => {
    expect(await verifyTicket(VECTOR, opts())).toEqual({ ok: true });
    expect(await verifyTicket(VECTOR_SUB, opts())).toEqual({ ok: true, sub: 'user-42' });
  });

  it('accepts every sub the pattern allows, up to 128 characters', async () => {
    for (const sub of ['a', 'A-z_0.9:@', 'x'.repeat(128)]) {
      expect(await verifyTicket(await signTicket({ profile: 'docs', expiresAt: EXP, sub }, SECRET), opts())).toEqual({ ok: true, sub });
    }
  });

  it('is valid until the last millisecond before exp, and expired at exp', async () => {
    expect(await verifyTicket(VECTOR, opts({ nowMs: EXP * 1000 - 1 }))).toEqual({ ok: true });
    expect(await verifyTicket(VECTOR, opts({ nowMs: EXP * 1000 }))).toEqual(refused(TICKET_REASONS.expired));
    expect(await verifyTicket(VECTOR, opts({ nowMs: EXP * 1000 + 86_400_000 }))).toEqual(refused('the ticket has expired'));
  });

  it('refuses a ticket meant to live longer than an hour, with no clock skew allowance', async () => {
    expect(TICKET_MAX_LIFETIME_S).toBe(3600);
    const at = (exp: number) => signTicket({ profile: 'docs', expiresAt: exp }, SECRET);
    const now = 1_800_000_000;
    expect(await verifyTicket(await at(now + 3600), opts({ nowMs: now * 1000 }))).toEqual({ ok: true });
    expect(await verifyTicket(await at(now + 3601), opts({ nowMs: now * 1000 }))).toEqual(
      refused('the ticket lives longer than 3600 seconds'),
    );
    // exp - now is judged in ms: a millisecond short of a whole second is already too long.
    expect(await verifyTicket(await at(now + 3600), opts({ nowMs: now * 1000 - 1 }))).toEqual(refused(TICKET_REASONS.tooLong));
    expect(await verifyTicket(await at(now + 10 * 365 * 86_400), opts({ nowMs: now * 1000 }))).toEqual(refused(TICKET_REASONS.tooLong));
  });

  it('refuses a ticket for another profile', async () => {
    expect(await verifyTicket(VECTOR, opts({ profile: 'support' }))).toEqual(refused('the ticket is for another agent'));
    expect(await verifyTicket(VECTOR, opts({ profile: 'Docs' }))).toEqual(refused(TICKET_REASONS.otherProfile));
    expect(await verifyTicket(VECTOR, opts({ profile: '' }))).toEqual(refused(TICKET_REASONS.otherProfile));
  });

  it('refuses a tampered payload: another profile, a later exp, an added sub', async () => {
    const [, , sig] = VECTOR.split('.');
    for (const json of [
      '{"p":"support","exp":1700000300}',
      '{"p":"docs","exp":1700003300}',
      '{"p":"docs","exp":1700000300,"sub":"admin"}',
    ]) {
      expect(await verifyTicket(`v1.${b64urlText(json)}.${sig}`, opts({ profile: 'support' }))).toEqual(
        refused("the ticket's signature does not match"),
      );
    }
    // One character of the payload changed.
    const [v, payload] = VECTOR.split('.') as [string, string];
    const flipped = payload.slice(0, 10) + (payload[10] === 'A' ? 'B' : 'A') + payload.slice(11);
    expect(await verifyTicket(`${v}.${flipped}.${sig}`, opts())).toEqual(refused(TICKET_REASONS.signature));
  });

  it('refuses a tampered signature', async () => {
    const sig = VECTOR.slice(VECTOR.lastIndexOf('.') + 1);
    const head = VECTOR.slice(0, VECTOR.lastIndexOf('.') + 1);
    const other = (c: string) => (c === 'A' ? 'B' : 'A');
    expect(await verifyTicket(head + other(sig[0]!) + sig.slice(1), opts())).toEqual(refused(TICKET_REASONS.signature));
    expect(await verifyTicket(head + sig.slice(0, 20) + other(sig[20]!) + sig.slice(21), opts())).toEqual(
      refused(TICKET_REASONS.signature),
    );
    // The last character carries 2 unused bits: 'k' -> 'o' changes a real bit...
    expect(sig.endsWith('k')).toBe(true);
    expect(await verifyTicket(`${head + sig.slice(0, -1)}o`, opts())).toEqual(refused(TICKET_REASONS.signature));
    // ...while 'k' -> 'l' only sets an unused one: not the canonical spelling, so malformed.
    expect(await verifyTicket(`${head + sig.slice(0, -1)}l`, opts())).toEqual(refused(TICKET_REASONS.malformed));
    // Another ticket's signature.
    const sig2 = VECTOR_SUB.slice(VECTOR_SUB.lastIndexOf('.') + 1);
    expect(await verifyTicket(head + sig2, opts())).toEqual(refused(TICKET_REASONS.signature));
    // Padded, truncated, too long.
    expect(await verifyTicket(`${head}${sig}=`, opts())).toEqual(refused(TICKET_REASONS.malformed));
    expect(await verifyTicket(head + sig.slice(0, -1), opts())).toEqual(refused(TICKET_REASONS.malformed));
    expect(await verifyTicket(`${head}${sig}A`, opts())).toEqual(refused(TICKET_REASONS.malformed));
    // Standard base64 instead of base64url.
    expect(await verifyTicket(head + sig.replace(/-/g, '+').replace(/_/g, '/'), opts())).toEqual(refused(TICKET_REASONS.malformed));
  });

  it('refuses a ticket signed with another secret', async () => {
    const forged = await signTicket({ profile: 'docs', expiresAt: EXP }, 'another-secret-of-the-same-length!!');
    expect(await verifyTicket(forged, opts())).toEqual(refused(TICKET_REASONS.signature));
    expect(await verifyTicket(VECTOR, opts({ secret: `${SECRET}x` }))).toEqual(refused(TICKET_REASONS.signature));
    expect(await verifyTicket(VECTOR, opts({ secret: SECRET.slice(0, -1) }))).toEqual(refused(TICKET_REASONS.signature));
  });

  it('refuses a signed ticket whose sub is not a valid user id', async () => {
    for (const sub of ['', 'has space', 'x'.repeat(129), 'new\nline', 'ünï', 'a/b', '<script>']) {
      const t = await signJson(JSON.stringify({ p: 'docs', exp: EXP, sub }));
      expect(await verifyTicket(t, opts()), sub).toEqual(refused("the ticket's sub is not a valid user id"));
    }
  });

  it('refuses signed payloads that are not the documented JSON as malformed', async () => {
    const bad = [
      '',
      'not json',
      'null',
      '[]',
      '"docs"',
      '42',
      '{}',
      '{"exp":1700000300}',
      '{"p":"docs"}',
      '{"p":7,"exp":1700000300}',
      '{"p":"docs","exp":"1700000300"}',
      '{"p":"docs","exp":1700000300.5}',
      '{"p":"docs","exp":-1}',
      '{"p":"docs","exp":0}',
      '{"p":"docs","exp":1e300}',
      '{"p":"docs","exp":null}',
      '{"p":"docs","exp":1700000300,"sub":42}',
      '{"p":"docs","exp":1700000300,"sub":null}',
      '{"p":"docs","exp":1700000300,"subj":"user-42"}',
      '{"p":"docs","exp":1700000300,"admin":true}',
      '\uFEFF{"p":"docs","exp":1700000300}',
      '{"p":"docs","exp":1700000300',
    ];
    for (const json of bad) {
      expect(await verifyTicket(await signJson(json), opts()), json).toEqual(refused('malformed ticket'));
    }
    // Invalid UTF-8 (a lone continuation byte inside a string), properly signed.
    const bytes = new TextEncoder().encode('{"p":"docs","exp":1700000300,"sub":"ab"}');
    bytes[bytes.length - 3] = 0x80;
    expect(await verifyTicket(await signRaw(b64url(bytes)), opts())).toEqual(refused(TICKET_REASONS.malformed));
  });

  it('refuses junk of every shape as malformed, never throwing', async () => {
    const [, payload, sig] = VECTOR.split('.');
    const junk: unknown[] = [
      undefined,
      null,
      42,
      0,
      true,
      {},
      [],
      ['v1', payload, sig],
      { toString: () => VECTOR },
      new String(VECTOR),
      Symbol('t'),
      () => VECTOR,
      '',
      'v1',
      'v1.',
      'v1..',
      '...',
      `v1.${payload}`,
      `v1.${payload}.`,
      `v1..${sig}`,
      `v2.${payload}.${sig}`,
      `V1.${payload}.${sig}`,
      ` ${VECTOR}`,
      `${VECTOR} `,
      `${VECTOR}\n`,
      `${VECTOR}.`,
      `${VECTOR}.extra`,
      `v1.${payload}.${sig}.${sig}`,
      `v1.${payload}=.${sig}`,
      `v1.${payload!.replace(/e/g, '+')}.${sig}`,
      `v1.${payload}é.${sig}`,
      `v1.${payload}\u0000.${sig}`,
      `v1.${'A'.repeat(TICKET_MAX_CHARS)}.${sig}`,
    ];
    for (const t of junk) {
      expect(await verifyTicket(t, opts()), String(typeof t === 'symbol' ? 'symbol' : t).slice(0, 60)).toEqual(
        refused(TICKET_REASONS.malformed),
      );
    }
  });

  it('refuses a ticket over 2048 characters before any crypto, even one properly signed', async () => {
    const long = await signJson(JSON.stringify({ p: 'docs', exp: EXP, pad: 'x'.repeat(TICKET_MAX_CHARS) }));
    expect(long.length).toBeGreaterThan(TICKET_MAX_CHARS);
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    const verify = vi.spyOn(crypto.subtle, 'verify');
    expect(await verifyTicket(long, opts())).toEqual(refused(TICKET_REASONS.malformed));
    expect(await verifyTicket('x'.repeat(10 * 1024 * 1024), opts())).toEqual(refused(TICKET_REASONS.malformed));
    expect(importKey).not.toHaveBeenCalled();
    expect(verify).not.toHaveBeenCalled();
  });

  it('never puts the secret or the expected signature in a reason', async () => {
    const sig = VECTOR.slice(VECTOR.lastIndexOf('.') + 1);
    const results = [
      await verifyTicket(`v1.${VECTOR.split('.')[1]}.${'A'.repeat(43)}`, opts()),
      await verifyTicket(VECTOR, opts({ profile: 'support' })),
      await verifyTicket(VECTOR, opts({ nowMs: EXP * 1000 })),
    ];
    for (const r of results) {
      expect(r.ok).toBe(false);
      const text = JSON.stringify(r);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(sig);
      expect(text).not.toContain(sig.slice(0, 8));
    }
  });

  it('throws on an empty secret: a configuration mistake, not the caller', async () => {
    await expect(verifyTicket(VECTOR, opts({ secret: '' }))).rejects.toThrow(TypeError);
    await expect(verifyTicket('junk', opts({ secret: '' }))).rejects.toThrow(TypeError);
  });
});
