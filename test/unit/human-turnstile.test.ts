// verifyTurnstile inside workerd, with a stand-in fetch: the request workerd would send, and the time limit.
// (Every siteverify behaviour is tested in Node against a wire-format fake: test/human/turnstile.test.ts.)
import { describe, expect, it } from 'vitest';
import { turnstileIdempotencyKey, verifyTurnstile } from '../../src/human/turnstile';

const URL_ = 'https://challenges.cloudflare.com/turnstile/v0/siteverify';

describe('verifyTurnstile in workerd', () => {
  it('builds a POST workerd accepts: form body, no redirects, an abort signal', async () => {
    const seen: Request[] = [];
    const stub: typeof fetch = async (input, init) => {
      seen.push(new Request(input, init));
      return Response.json({ success: true, 'error-codes': [], challenge_ts: '2026-12-01T00:00:00.000Z', hostname: 'example.com' });
    };
    const key = await turnstileIdempotencyKey('run_1', 'tok');
    expect(
      await verifyTurnstile('tok.en-_1', { secret: 's3cret', url: URL_, remoteIp: '198.51.100.4', idempotencyKey: key, fetch: stub }),
    ).toEqual({ ok: true });
    const [req] = seen;
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe(URL_);
    expect(req!.redirect).toBe('manual');
    expect(req!.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(req!.signal).toBeInstanceOf(AbortSignal);
    expect(new TextDecoder().decode(await req!.arrayBuffer())).toBe(
      `secret=s3cret&response=tok.en-_1&remoteip=198.51.100.4&idempotency_key=${key}`,
    );
  });

  it('aborts the fetch and answers retryable when siteverify does not answer in time', async () => {
    let signal: AbortSignal | undefined;
    const never: typeof fetch = (_input, init) => {
      signal = init?.signal ?? undefined;
      return new Promise<Response>(() => {});
    };
    const started = Date.now();
    const r = await verifyTurnstile('tok', { secret: 's', url: URL_, fetch: never, timeoutMs: 100 });
    expect(r).toEqual({
      ok: false,
      reason: 'the Turnstile check could not be done (no answer within the time limit); try again',
      retryable: true,
    });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(signal?.aborted).toBe(true);
  });

  it('reports a failure verdict with its codes', async () => {
    const stub: typeof fetch = async () => Response.json({ success: false, 'error-codes': ['timeout-or-duplicate'] });
    expect(await verifyTurnstile('tok', { secret: 's', url: URL_, fetch: stub })).toEqual({
      ok: false,
      reason: 'the Turnstile check failed: timeout-or-duplicate',
      retryable: false,
    });
  });
});
