// A profile behind Turnstile, end to end: a real `wrangler dev` checks the
// caller's token with the fake siteverify (test/support/fake-turnstile.ts),
// which, like Cloudflare's, verifies a token once and answers a repeated
// check the same only when it repeats the first one's idempotency_key.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { startFakeTurnstile, type FakeTurnstile } from '../support/fake-turnstile';

/**
 * The caller's address as Cloudflare's edge would pass it (wrangler dev
 * passes the header on): a public client, not loopback, so the caller is
 * every bit the anonymous stranger the check is for.
 */
const CLIENT_IP = '203.0.113.50';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The service gives siteverify 5 s (TURNSTILE_TIMEOUT_MS); the start must answer soon after. */
const HANG_ANSWER_WITHIN_MS = 6_000;

let fake: FakeTurnstile;
let server: DevServer;

beforeAll(async () => {
  fake = await startFakeTurnstile();
  const PROFILES = JSON.stringify({
    widget: { agent: 'demo', options: { tokens: 2, delayMs: 0 }, humanCheck: 'turnstile', default: true },
  });
  server = await startDevServer({ vars: { PROFILES, TURNSTILE_SECRET_KEY: fake.secret, TURNSTILE_VERIFY_URL: fake.url } });
});
afterAll(async () => {
  await server?.stop();
  await fake?.close();
});
afterEach(() => {
  fake.mode = 'normal';
});

const start = (body: Record<string, unknown>) =>
  fetch(`${server.url}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': CLIENT_IP },
    body: JSON.stringify({ query: 'q', ...body }),
  });

const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;
const newId = () => `turnstile-${crypto.randomUUID()}`;

describe('a profile with humanCheck "turnstile"', () => {
  it('needs a good token, verifies each once, and lets a retried POST of the same start attach', async () => {
    // No token: refused without asking siteverify (there is nothing to ask about).
    const none = await start({ requestId: newId() });
    expect(none.status).toBe(403);
    expect((await errorOf(none)).code).toBe('human_check_failed');
    expect(fake.requests).toHaveLength(0);

    const token = fake.goodToken();
    const requestId = newId();
    const startSecret = 'the-widgets-start-secret-0123456789';
    const created = await start({ requestId, startSecret, turnstileToken: token });
    expect(created.status).toBe(201);
    const first = (await created.json()) as { requestId: string; token: string };
    expect(first.requestId).toBe(requestId);
    expect(fake.requests).toHaveLength(1);
    const check = fake.requests[0]!;
    expect(check.form).toEqual({ secret: fake.secret, response: token, remoteip: CLIENT_IP, idempotency_key: expect.stringMatching(UUID) });

    // The same token for another run: siteverify says it was used (a token is good for one start).
    const reused = await start({ requestId: newId(), turnstileToken: token });
    expect(reused.status).toBe(403);
    expect(await errorOf(reused)).toMatchObject({ code: 'human_check_failed', message: expect.stringContaining('timeout-or-duplicate') });
    // Nor may a start secret turn a failed check into a new run.
    const withSecret = await start({ requestId: newId(), startSecret, turnstileToken: token });
    expect(withSecret.status).toBe(403);
    expect((await errorOf(withSecret)).code).toBe('human_check_failed');
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[1]!.form.idempotency_key).not.toBe(check.form.idempotency_key);

    // The first POST retried (its answer lost): same requestId, secret and token.
    const retried = await start({ requestId, startSecret, turnstileToken: token });
    expect(retried.status).toBe(200);
    const again = (await retried.json()) as { requestId: string; token: string };
    expect(again.requestId).toBe(requestId);
    // siteverify was asked again with the first check's key, so it gave the first answer.
    expect(fake.requests).toHaveLength(4);
    expect(fake.requests[3]!.form).toEqual(check.form);
    // The attach's new token and the first one open the same run, which ran once.
    for (const t of [first.token, again.token]) {
      const status = await fetch(`${server.url}/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${t}` } });
      expect(status.status).toBe(200);
      expect(await status.json()).toMatchObject({ requestId, agent: 'widget' });
    }
  });

  it('answers 403 saying the check could not be done when siteverify never answers (no 500, no hang)', async () => {
    fake.mode = 'hang';
    const before = fake.requests.length;
    const started = Date.now();
    const res = await start({ requestId: newId(), turnstileToken: fake.goodToken() });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(403);
    const error = await errorOf(res);
    expect(error.code).toBe('human_check_failed');
    expect(error.message).toMatch(/could not be done.*try again/);
    expect(elapsed).toBeLessThan(HANG_ANSWER_WITHIN_MS);
    // It did ask, and gave up on the request rather than leaving it open.
    expect(fake.requests).toHaveLength(before + 1);
    const asked = fake.requests[before]!;
    await expect.poll(() => asked.abandoned(), { timeout: 5_000 }).toBe(true);
  });
});
