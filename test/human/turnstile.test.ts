// verifyTurnstile against a local server speaking siteverify's wire format, in every mode.
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TURNSTILE_TIMEOUT_MS, turnstileIdempotencyKey, verifyTurnstile, type TurnstileOptions } from '../../src/human/turnstile';
import { freePort } from '../support/dev-server';
import { SITEVERIFY_PATH, startFakeTurnstile, type FakeTurnstile } from '../support/fake-turnstile';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let fake: FakeTurnstile;
beforeAll(async () => {
  fake = await startFakeTurnstile();
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.mode = 'normal';
  fake.delayMs = 0;
  fake.requests.length = 0;
});

const opts = (extra: Partial<TurnstileOptions> = {}): TurnstileOptions => ({ secret: fake.secret, url: fake.url, ...extra });
const couldNot = expect.stringMatching(/^the Turnstile check could not be done \(.+\); try again$/);

/** A JSON answer from a stub fetch. */
const answering =
  (status: number, body: string, type = 'application/json'): typeof fetch =>
  async () =>
    new Response(body, { status, headers: { 'Content-Type': type } });

describe('verifyTurnstile: what it sends', () => {
  it('posts exactly the documented form fields, form-encoded, in order', async () => {
    const token = fake.goodToken();
    const key = crypto.randomUUID();
    expect(await verifyTurnstile(token, opts({ remoteIp: '203.0.113.7', idempotencyKey: key }))).toEqual({ ok: true });
    expect(fake.requests).toHaveLength(1);
    const [req] = fake.requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe(SITEVERIFY_PATH);
    expect(req!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req!.headers.accept).toBe('application/json');
    expect(req!.fields).toEqual([
      ['secret', fake.secret],
      ['response', token],
      ['remoteip', '203.0.113.7'],
      ['idempotency_key', key],
    ]);
    expect(req!.raw).toBe(
      new URLSearchParams({ secret: fake.secret, response: token, remoteip: '203.0.113.7', idempotency_key: key }).toString(),
    );
  });

  it('sends a fresh random UUID as idempotency_key when none is given', async () => {
    await verifyTurnstile(fake.goodToken(), opts());
    await verifyTurnstile(fake.goodToken(), opts());
    const keys = fake.requests.map((r) => r.form.idempotency_key);
    expect(keys[0]).toMatch(UUID);
    expect(keys[1]).toMatch(UUID);
    expect(keys[0]).not.toBe(keys[1]);
  });

  it('sends remoteip only when it is an IP address', async () => {
    await verifyTurnstile(fake.goodToken(), opts({ remoteIp: '2001:db8::1' }));
    await verifyTurnstile(fake.goodToken(), opts());
    await verifyTurnstile(fake.goodToken(), opts({ remoteIp: '' }));
    await verifyTurnstile(fake.goodToken(), opts({ remoteIp: '1.2.3.4&secret=x' }));
    expect(fake.requests.map((r) => r.form.remoteip)).toEqual(['2001:db8::1', undefined, undefined, undefined]);
    expect(fake.requests.map((r) => r.fields.map(([k]) => k).join(','))).toEqual([
      'secret,response,remoteip,idempotency_key',
      'secret,response,idempotency_key',
      'secret,response,idempotency_key',
      'secret,response,idempotency_key',
    ]);
  });

  it('encodes tokens with characters that mean something in a form', async () => {
    const token = fake.goodToken('0.a+b/c=d&e%f.g');
    expect(await verifyTurnstile(token, opts())).toEqual({ ok: true });
    expect(fake.requests[0]!.form.response).toBe(token);
    expect(fake.requests[0]!.raw).toContain('response=0.a%2Bb%2Fc%3Dd%26e%25f.g&');
  });

  it('refuses a missing, empty, non-string or over-long token without calling siteverify', async () => {
    for (const token of [undefined, null, '', 42, {}, ['t'], 'x'.repeat(2049), 'has space', 'tab\there', 'ünï', 'x'.repeat(1_000_000)]) {
      const r = await verifyTurnstile(token, opts());
      expect(r.ok).toBe(false);
      expect(r).toMatchObject({ retryable: false });
    }
    expect(await verifyTurnstile('', opts())).toEqual({ ok: false, reason: 'no Turnstile token was sent', retryable: false });
    expect(await verifyTurnstile('x'.repeat(2049), opts())).toEqual({
      ok: false,
      reason: 'the Turnstile token is not valid',
      retryable: false,
    });
    expect(fake.requests).toHaveLength(0);
    // 2048 characters is still a token (Cloudflare's limit) and is asked about.
    const longest = fake.goodToken('t'.repeat(2048));
    expect(await verifyTurnstile(longest, opts())).toEqual({ ok: true });
    expect(fake.requests).toHaveLength(1);
  });

  it('throws for an empty secret or an idempotency key that is not a UUID (code mistakes)', async () => {
    await expect(verifyTurnstile('t', opts({ secret: '' }))).rejects.toThrow(TypeError);
    await expect(verifyTurnstile('t', opts({ idempotencyKey: 'run_123' }))).rejects.toThrow(TypeError);
    expect(fake.requests).toHaveLength(0);
  });

  it('does not follow a redirect (the secret is in the body)', async () => {
    const port = await freePort();
    const redirector: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(307, { Location: fake.url });
      res.end();
    });
    await new Promise<void>((r) => redirector.listen(port, '127.0.0.1', r));
    try {
      const r = await verifyTurnstile(fake.goodToken(), opts({ url: `http://127.0.0.1:${port}/siteverify` }));
      expect(r).toEqual({
        ok: false,
        reason: 'the Turnstile check could not be done (siteverify answered HTTP 307); try again',
        retryable: true,
      });
      expect(fake.requests).toHaveLength(0);
    } finally {
      redirector.closeAllConnections();
      await new Promise<void>((r) => redirector.close(() => r()));
    }
  });
});

describe("verifyTurnstile: siteverify's verdicts", () => {
  it('accepts a good token', async () => {
    expect(await verifyTurnstile(fake.goodToken(undefined, { hostname: 'docs.example', action: 'start' }), opts())).toEqual({ ok: true });
  });

  it('refuses a good token used a second time: timeout-or-duplicate, not retryable', async () => {
    const token = fake.goodToken();
    expect(await verifyTurnstile(token, opts())).toEqual({ ok: true });
    expect(await verifyTurnstile(token, opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check failed: timeout-or-duplicate',
      retryable: false,
    });
  });

  it('gets the first answer again when a retried check repeats the idempotency key', async () => {
    const token = fake.goodToken();
    const key = await turnstileIdempotencyKey('run_abc', token);
    expect(await verifyTurnstile(token, opts({ idempotencyKey: key }))).toEqual({ ok: true });
    expect(await verifyTurnstile(token, opts({ idempotencyKey: key }))).toEqual({ ok: true });
    // The same token for another run has another key: a reuse.
    const other = await turnstileIdempotencyKey('run_other', token);
    expect(await verifyTurnstile(token, opts({ idempotencyKey: other }))).toMatchObject({
      ok: false,
      reason: 'the Turnstile check failed: timeout-or-duplicate',
    });
  });

  it('refuses an unknown token: invalid-input-response, not retryable', async () => {
    expect(await verifyTurnstile('0.made-up-token', opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check failed: invalid-input-response',
      retryable: false,
    });
  });

  it('names invalid-input-secret for a wrong secret, and does not use up the token', async () => {
    const token = fake.goodToken();
    const r = await verifyTurnstile(token, opts({ secret: 'not-the-secret' }));
    expect(r).toEqual({ ok: false, reason: 'the Turnstile check failed: invalid-input-secret', retryable: false });
    expect(JSON.stringify(r)).not.toContain('not-the-secret');
    expect(await verifyTurnstile(token, opts())).toEqual({ ok: true });
  });

  it('treats internal-error as retryable, as Cloudflare documents', async () => {
    fake.mode = 'internal-error';
    expect(await verifyTurnstile(fake.goodToken(), opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check failed: internal-error',
      retryable: true,
    });
  });

  it('names only error codes that are plain identifiers, never the secret', async () => {
    const body = JSON.stringify({
      success: false,
      'error-codes': ['<b>bad</b>', 'invalid-input-response', `secret is ${fake.secret}`, 42, 'x'.repeat(65)],
    });
    const r = await verifyTurnstile('t', opts({ fetch: answering(200, body) }));
    expect(r).toEqual({ ok: false, reason: 'the Turnstile check failed: invalid-input-response', retryable: false });
    const none = await verifyTurnstile('t', opts({ fetch: answering(200, JSON.stringify({ success: false, 'error-codes': 'nope' })) }));
    expect(none).toEqual({ ok: false, reason: 'the Turnstile check failed', retryable: false });
    const empty = await verifyTurnstile('t', opts({ fetch: answering(200, JSON.stringify({ success: false })) }));
    expect(empty).toEqual({ ok: false, reason: 'the Turnstile check failed', retryable: false });
  });

  it('shows at most four codes', async () => {
    const body = JSON.stringify({ success: false, 'error-codes': ['a', 'b', 'c', 'd', 'e'] });
    expect(await verifyTurnstile('t', opts({ fetch: answering(200, body) }))).toMatchObject({
      reason: 'the Turnstile check failed: a, b, c, d',
    });
  });

  it('needs success to be exactly true', async () => {
    for (const success of ['true', 1, null]) {
      const r = await verifyTurnstile('t', opts({ fetch: answering(200, JSON.stringify({ success, 'error-codes': [] })) }));
      expect(r).toMatchObject({ ok: false, retryable: true, reason: couldNot });
    }
  });
});

describe('verifyTurnstile: when siteverify cannot answer', () => {
  it('gives up after timeoutMs when siteverify never answers, and drops the connection', async () => {
    fake.mode = 'hang';
    const started = Date.now();
    const r = await verifyTurnstile(fake.goodToken(), opts({ timeoutMs: 300 }));
    const took = Date.now() - started;
    expect(r).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (no answer within the time limit); try again',
      retryable: true,
    });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
    // The abort reaches the server: nothing is left waiting.
    await fake.requests[0]!.closed;
    expect(fake.requests[0]!.abandoned()).toBe(true);
  });

  it('waits 5 seconds by default', async () => {
    expect(TURNSTILE_TIMEOUT_MS).toBe(5000);
    fake.mode = 'hang';
    const started = Date.now();
    const r = await verifyTurnstile(fake.goodToken(), opts());
    const took = Date.now() - started;
    expect(r).toMatchObject({ ok: false, retryable: true });
    expect(took).toBeGreaterThanOrEqual(4990);
    expect(took).toBeLessThan(7000);
  });

  it('answers in time when siteverify is slow but within the limit', async () => {
    fake.delayMs = 150;
    expect(await verifyTurnstile(fake.goodToken(), opts({ timeoutMs: 2000 }))).toEqual({ ok: true });
  });

  it('times out even with a fetch that ignores its abort signal', async () => {
    const never: typeof fetch = () => new Promise<Response>(() => {});
    const started = Date.now();
    expect(await verifyTurnstile('t', opts({ fetch: never, timeoutMs: 100 }))).toMatchObject({
      ok: false,
      retryable: true,
      reason: couldNot,
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('times out when the headers come but the body never ends', async () => {
    const stalled: typeof fetch = async () =>
      new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"success":')) }), { status: 200 });
    expect(await verifyTurnstile('t', opts({ fetch: stalled, timeoutMs: 100 }))).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (no answer within the time limit); try again',
      retryable: true,
    });
  });

  it('is retryable on a 500', async () => {
    fake.mode = 'http-500';
    expect(await verifyTurnstile(fake.goodToken(), opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (siteverify answered HTTP 500); try again',
      retryable: true,
    });
  });

  it('is retryable on an HTML page instead of JSON', async () => {
    fake.mode = 'html';
    expect(await verifyTurnstile(fake.goodToken(), opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (siteverify did not answer JSON); try again',
      retryable: true,
    });
  });

  it('is retryable on JSON that is not a siteverify answer', async () => {
    fake.mode = 'odd-json';
    expect(await verifyTurnstile(fake.goodToken(), opts())).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (siteverify answered something else); try again',
      retryable: true,
    });
    for (const body of ['null', '[]', '"ok"', '{}']) {
      expect(await verifyTurnstile('t', opts({ fetch: answering(200, body) }))).toMatchObject({
        ok: false,
        retryable: true,
        reason: couldNot,
      });
    }
  });

  it('is retryable when siteverify cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    expect(await verifyTurnstile('t', opts({ url: `http://127.0.0.1:${port}${SITEVERIFY_PATH}` }))).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (siteverify could not be reached); try again',
      retryable: true,
    });
    const throwing: typeof fetch = () => {
      throw new TypeError('fetch failed');
    };
    expect(await verifyTurnstile('t', opts({ fetch: throwing }))).toMatchObject({ ok: false, retryable: true, reason: couldNot });
  });

  it('is retryable on an answer too big to be siteverify', async () => {
    const big = JSON.stringify({ success: true, 'error-codes': [], pad: 'x'.repeat(20_000) });
    expect(await verifyTurnstile('t', opts({ fetch: answering(200, big) }))).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (siteverify answered too much); try again',
      retryable: true,
    });
  });

  it('is retryable on any other non-2xx, even with a success body', async () => {
    for (const status of [400, 403, 429, 502, 503]) {
      const r = await verifyTurnstile('t', opts({ fetch: answering(status, JSON.stringify({ success: true, 'error-codes': [] })) }));
      expect(r).toEqual({
        ok: false,
        reason: `the Turnstile check could not be done (siteverify answered HTTP ${status}); try again`,
        retryable: true,
      });
    }
  });
});

describe('the fake siteverify itself', () => {
  const post = (body: string, type = 'application/x-www-form-urlencoded') =>
    fetch(fake.url, { method: 'POST', headers: { 'Content-Type': type }, body }).then((r) => r.json());

  it('names a missing secret and a missing response', async () => {
    expect(await post(new URLSearchParams({ response: 'x' }).toString())).toEqual({
      success: false,
      'error-codes': ['missing-input-secret'],
      messages: [],
    });
    expect(await post(new URLSearchParams({ secret: fake.secret }).toString())).toEqual({
      success: false,
      'error-codes': ['missing-input-response'],
      messages: [],
    });
  });

  it('answers success with the documented fields, and accepts JSON bodies too', async () => {
    const token = fake.goodToken(undefined, { hostname: 'docs.example', action: 'start', cdata: 'c1' });
    const answer = await post(JSON.stringify({ secret: fake.secret, response: token }), 'application/json');
    expect(answer).toMatchObject({ success: true, 'error-codes': [], hostname: 'docs.example', action: 'start', cdata: 'c1' });
    expect(new Date(answer.challenge_ts).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('calls a body of another type bad-request', async () => {
    expect(await post('secret=x', 'text/plain')).toEqual({ success: false, 'error-codes': ['bad-request'], messages: [] });
  });
});

describe('turnstileIdempotencyKey', () => {
  it('is a UUID, the same for the same parts and different otherwise', async () => {
    const a = await turnstileIdempotencyKey('run_1', 'tok');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await turnstileIdempotencyKey('run_1', 'tok')).toBe(a);
    expect(await turnstileIdempotencyKey('run_2', 'tok')).not.toBe(a);
    expect(await turnstileIdempotencyKey('run_1', 'tok2')).not.toBe(a);
    expect(await turnstileIdempotencyKey('ab', 'c')).not.toBe(await turnstileIdempotencyKey('a', 'bc'));
  });
});
