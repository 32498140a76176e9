// What an anonymous caller through the edge may spend: running runs, daily
// budgets, readers per run, failed authentications, the human check. Each
// test uses its own client addresses (the counters are Durable Objects).
import { env } from 'cloudflare:workers';
import { createExecutionContext, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index';
import { signTicket } from '../../src/human/ticket';
import { clientKey } from '../../src/limits/client-key';
import { releaseRun } from '../../src/limits/usage';
import { BASE, readSse } from './helpers';

type Vars = Record<string, string>;
const callWith = (vars: Vars, path: string, init: RequestInit = {}) =>
  worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars }, createExecutionContext());
const startFrom = (ip: string, vars: Vars, body: object = {}, headers: Record<string, string> = {}) =>
  callWith(vars, '/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': ip, ...headers },
    body: JSON.stringify({ query: 'q', options: { tokens: 2, delayMs: 0 }, ...body }),
  });
const LONG = { options: { tokens: 1000, delayMs: 50 } };
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

/**
 * True when nothing of run `requestId` exists: an API key (which opens every
 * run) gets 404 for its status, and its object holds no table at all.
 */
async function nothingStored(requestId: string): Promise<boolean> {
  const status = await callWith({ API_KEYS: 'k' }, `/v1/runs/${requestId}`, { headers: { Authorization: 'Bearer k' } });
  if (status.status !== 404) return false;
  return runInDurableObject(
    env.RUNS.get(env.RUNS.idFromName(requestId)),
    (_o, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().length === 0,
  );
}

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('running runs per client', () => {
  const vars = { LIMIT_RUNNING_PER_CLIENT: '2' };

  it('refuses a third run at once with 429 rate_limited and Retry-After, starts nothing, and frees the slot when a run ends', async () => {
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const res = await startFrom('198.51.100.10', vars, LONG);
      expect(res.status).toBe(201);
      runs.push((await res.json()) as { requestId: string; token: string });
    }
    const refused = await startFrom('198.51.100.10', vars, { ...LONG, requestId: 'limit-running-3' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect((await errorOf(refused)).code).toBe('rate_limited');
    expect(await nothingStored('limit-running-3')).toBe(true);
    // Another client, loopback and an API-key caller are not held back by this one.
    expect((await startFrom('198.51.100.11', vars)).status).toBe(201);
    expect((await startFrom('127.0.0.1', vars)).status).toBe(201);
    expect((await startFrom('198.51.100.10', { ...vars, API_KEYS: 'k' }, {}, { Authorization: 'Bearer k' })).status).toBe(201);

    const first = runs[0]!;
    await callWith(vars, `/v1/runs/${first.requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${first.token}` } });
    await until(async () => (await startFrom('198.51.100.10', vars, { requestId: `limit-running-${Date.now()}` })).status === 201);
    await callWith(vars, `/v1/runs/${runs[1]!.requestId}/cancel`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${runs[1]!.token}` },
    });
  });

  it('counts an IPv6 /64 as one client', async () => {
    const res = [];
    res.push(await startFrom('2001:db8:7:1::1', vars, LONG));
    res.push(await startFrom('2001:db8:7:1:ffff::2', vars, LONG));
    const third = await startFrom('2001:DB8:7:1:abcd:0:0:3', vars, LONG);
    expect(res.map((r) => r.status)).toEqual([201, 201]);
    expect(third.status).toBe(429);
    expect((await startFrom('2001:db8:7:2::1', vars)).status).toBe(201); // the next /64 is another client
    for (const r of res) {
      const { requestId, token } = (await r.json()) as any;
      await callWith(vars, `/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    }
  });
});

describe('daily budgets', () => {
  it('refuse a client over its rows for the day with 429 quota_exceeded until the next UTC midnight', async () => {
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '2' };
    const ok = await startFrom('198.51.100.20', vars, {}, { Accept: 'text/event-stream' });
    expect(ok.status).toBe(200);
    await readSse(ok); // the run ends: its rows are charged
    let refused: Response | undefined;
    let requestId = '';
    await until(async () => {
      requestId = `budget-${crypto.randomUUID()}`;
      refused = await startFrom('198.51.100.20', vars, { requestId });
      return refused.status === 429;
    });
    expect((await errorOf(refused!)).code).toBe('quota_exceeded');
    expect(await nothingStored(requestId)).toBe(true);
    const retryAfter = Number(refused!.headers.get('Retry-After'));
    const toMidnight = (Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Date.now()) / 1000;
    expect(retryAfter).toBeGreaterThan(0);
    expect(Math.abs(retryAfter - toMidnight)).toBeLessThan(5);
    expect((await startFrom('198.51.100.21', vars)).status).toBe(201); // another client still may
  });

  it('refuse a client over its model tokens for the day with 429 quota_exceeded, starting nothing', async () => {
    // demo runs cost 0 tokens and a model agent needs an upstream: charge the client's counter as a finished model run would.
    await releaseRun(env, clientKey('198.51.100.25')!, 'a-finished-model-run', { tokens: 500, rows: 0 });
    const vars = { BUDGET_CLIENT_TOKENS_PER_DAY: '500' };
    for (const headers of [{}, { Accept: 'text/event-stream' }] as Record<string, string>[]) {
      const requestId = `token-budget-${crypto.randomUUID()}`;
      const refused = await startFrom('198.51.100.25', vars, { requestId }, headers);
      expect(refused.status).toBe(429);
      const error = await errorOf(refused);
      expect(error.code).toBe('quota_exceeded');
      expect(error.message).toMatch(/token/i);
      expect(Number(refused.headers.get('Retry-After'))).toBeGreaterThan(0);
      expect(await nothingStored(requestId)).toBe(true);
    }
    // Under the budget it starts: the same client with a larger one, and another client with this one.
    expect((await startFrom('198.51.100.25', { BUDGET_CLIENT_TOKENS_PER_DAY: '501' })).status).toBe(201);
    expect((await startFrom('198.51.100.26', vars)).status).toBe(201);
  });

  it('refuse every anonymous client once the deployment is over its budget, but not API-key callers', async () => {
    const done = await startFrom('198.51.100.30', {}, {}, { Accept: 'text/event-stream' });
    await readSse(done);
    const vars = { BUDGET_DEPLOYMENT_ROWS_PER_DAY: '1' };
    let refused: Response | undefined;
    let refusedId = '';
    await until(async () => {
      refusedId = `dep-budget-${crypto.randomUUID()}`;
      refused = await startFrom('198.51.100.31', vars, { requestId: refusedId });
      return refused.status === 429;
    });
    expect((await errorOf(refused!)).code).toBe('quota_exceeded');
    expect(Number(refused!.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(Number(refused!.headers.get('Retry-After'))).toBeLessThanOrEqual(86_400);
    expect(await nothingStored(refusedId)).toBe(true);
    expect((await startFrom('198.51.100.31', { ...vars, API_KEYS: 'k' }, {}, { Authorization: 'Bearer k' })).status).toBe(201);
  });
});

describe('readers per run', () => {
  it('refuses an anonymous reader over the cap with 429 and Retry-After; API-key readers are not counted against it', async () => {
    const vars = { LIMIT_READERS_PER_RUN: '2', API_KEYS: '' };
    const res = await startFrom('127.0.0.1', vars, LONG);
    const { requestId, token } = (await res.json()) as any;
    const read = (ip: string, headers: Record<string, string> = {}) =>
      callWith(vars, `/v1/runs/${requestId}/events`, { headers: { Authorization: `Bearer ${token}`, 'CF-Connecting-IP': ip, ...headers } });
    const open = [await read('198.51.100.40'), await read('198.51.100.41')];
    expect(open.map((r) => r.status)).toEqual([200, 200]);
    const third = await read('198.51.100.42');
    expect(third.status).toBe(429);
    expect(third.headers.get('Retry-After')).toBe('5');
    expect((await errorOf(third)).code).toBe('rate_limited');
    const local = await read('127.0.0.1');
    expect(local.status).toBe(200);
    // ...and a reader that is not limited takes no anonymous caller's place.
    await open[1]!.body!.cancel();
    let replacement: Response | undefined;
    await until(async () => {
      replacement = await read('198.51.100.43');
      if (replacement.status !== 200) await replacement.body?.cancel();
      return replacement.status === 200;
    });
    for (const r of [open[0]!, local, replacement!]) await r.body!.cancel();
    // Closed readers free their places.
    await until(async () => {
      const again = await read('198.51.100.42');
      await again.body?.cancel();
      return again.status === 200;
    });
    await callWith(vars, `/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  });
});

describe('failed authentication', () => {
  it('answers 429 rate_limited after 20 wrong tokens from one client, while the right token from elsewhere still works', async () => {
    const res = await startFrom('127.0.0.1', {});
    const { requestId, token } = (await res.json()) as any;
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 21; i++) {
      const r = await callWith({}, `/v1/runs/${requestId}`, {
        headers: { Authorization: `Bearer wrong-${i}`, 'CF-Connecting-IP': '198.51.100.50' },
      });
      statuses.push(r.status);
      retryAfter = r.headers.get('Retry-After');
    }
    expect(statuses.slice(0, 20).every((s) => s === 404)).toBe(true);
    expect(statuses[20]).toBe(429);
    expect(retryAfter).toBe('60');
    const ok = await callWith({}, `/v1/runs/${requestId}`, {
      headers: { Authorization: `Bearer ${token}`, 'CF-Connecting-IP': '198.51.100.51' },
    });
    expect(ok.status).toBe(200);
  });
});

describe('failed authentication by a wrong API key', () => {
  const vars = { API_KEYS: 'the-right-key' };
  const wrong = { Authorization: 'Bearer not-the-key' };
  /** 21 calls from one client: 20 refusals as the route answers them, then 429 rate_limited with Retry-After: 60. */
  async function expectLimited(ip: string, send: (ip: string) => Response | Promise<Response>, refusal: number) {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 21; i++) {
      last = await send(ip);
      statuses.push(last.status);
      if (i < 20) await last.body?.cancel();
    }
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(refusal));
    expect(statuses[20]).toBe(429);
    expect(last!.headers.get('Retry-After')).toBe('60');
    expect((await errorOf(last!)).code).toBe('rate_limited');
  }

  it('counts a wrong Bearer on GET /v1/agents', async () => {
    await expectLimited('198.51.100.70', (ip) => callWith(vars, '/v1/agents', { headers: { ...wrong, 'CF-Connecting-IP': ip } }), 401);
  });

  it('counts a wrong Bearer on POST /v1/runs without a requestId, and starts nothing', async () => {
    await expectLimited('198.51.100.71', (ip) => startFrom(ip, vars, {}, wrong), 401);
    // With a requestId (an attach that opens nothing): counted too, and nothing stored.
    const requestId = `wrong-key-${crypto.randomUUID()}`;
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await startFrom('198.51.100.72', vars, { requestId }, wrong)).status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses[20]).toBe(429);
    expect(await nothingStored(requestId)).toBe(true);
  });

  it('counts a wrong Bearer on the external producer append POST /v1/runs/{id}/events', async () => {
    const append = (ip: string) =>
      callWith(vars, '/v1/runs/some-run/events', {
        method: 'POST',
        headers: {
          ...wrong,
          'CF-Connecting-IP': ip,
          'Content-Type': 'application/json',
          'Producer-Id': 'p',
          'Producer-Epoch': '0',
          'Producer-Seq': '0',
        },
        body: '[]',
      });
    await expectLimited('198.51.100.73', append, 401);
  });

  it('counts a wrong Bearer on a chat turn (POST /v1/chat/{id}/messages and POST /v1/chat)', async () => {
    const turn = (ip: string) =>
      callWith(vars, '/v1/chat/wrong-key-chat-0123456789/messages', {
        method: 'POST',
        headers: { ...wrong, 'CF-Connecting-IP': ip, 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: 'hi' }),
      });
    await expectLimited('198.51.100.74', turn, 401);
    const aiSdkTurn = (ip: string) =>
      callWith(vars, '/v1/chat', {
        method: 'POST',
        headers: { ...wrong, 'CF-Connecting-IP': ip, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          id: 'wrong-key-usechat-0123456789',
          messages: [{ id: 'm1', role: 'user', parts: [{ type: 'text', text: 'hi' }] }],
          trigger: 'submit-message',
        }),
      });
    await expectLimited('198.51.100.75', aiSdkTurn, 401);
  });

  it('counts a chat credential that opens nothing, also for a chat that does not exist (GET /v1/chat/{id}/events)', async () => {
    const read = (ip: string) =>
      callWith({}, '/v1/chat/no-such-chat-0123456789abcdef/events', {
        headers: { Authorization: 'Bearer a-guessed-chat-token', 'CF-Connecting-IP': ip },
      });
    await expectLimited('198.51.100.77', read, 404);
  });

  it('does not count loopback callers, callers with the right key, or callers that present nothing', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      statuses.push((await callWith(vars, '/v1/agents', { headers: { ...wrong, 'CF-Connecting-IP': '127.0.0.1' } })).status);
      statuses.push((await callWith(vars, '/v1/agents', { headers: { 'CF-Connecting-IP': '198.51.100.76' } })).status);
    }
    expect(new Set(statuses)).toEqual(new Set([401]));
    // The right key is never refused, and never limited by failures (it is a trusted backend).
    const ok = await callWith(vars, '/v1/agents', {
      headers: { Authorization: 'Bearer the-right-key', 'CF-Connecting-IP': '198.51.100.76' },
    });
    expect(ok.status).toBe(200);
  });
});

describe('a profile with a human check', () => {
  const TICKET_SECRET = 'the-ticket-secret-shared-with-the-site-0123';
  const vars = {
    TICKET_SECRET,
    PROFILES: JSON.stringify({ widget: { agent: 'demo', options: { tokens: 2, delayMs: 0 }, humanCheck: 'ticket', default: true } }),
  };
  const inAMinute = () => Math.floor(Date.now() / 1000) + 60;

  it('refuses an anonymous start without a valid ticket with 403 human_check_failed, and starts nothing', async () => {
    for (const ticket of [
      undefined,
      'garbage',
      await signTicket({ profile: 'other', expiresAt: inAMinute() }, TICKET_SECRET),
      await signTicket({ profile: 'widget', expiresAt: inAMinute() }, 'another-secret-of-the-same-length-0123'),
    ]) {
      const requestId = `human-${crypto.randomUUID()}`;
      const res = await startFrom('198.51.100.60', vars, { requestId, options: {}, ...(ticket ? { ticket } : {}) });
      expect(res.status).toBe(403);
      const error = await errorOf(res);
      expect(error.code).toBe('human_check_failed');
      expect(error.message).not.toContain(TICKET_SECRET);
      expect(await nothingStored(requestId)).toBe(true);
    }
    // Also when streamed.
    const streamed = await startFrom('198.51.100.60', vars, { options: {} }, { Accept: 'text/event-stream' });
    expect(streamed.status).toBe(403);
    expect((await errorOf(streamed)).code).toBe('human_check_failed');
  });

  it('starts with a ticket signed for the profile; a retried POST with the start secret needs no second check', async () => {
    const ticket = await signTicket({ profile: 'widget', expiresAt: inAMinute(), sub: 'user-42' }, TICKET_SECRET);
    const body = { requestId: `human-ok-${crypto.randomUUID()}`, startSecret: 'the-clients-start-secret-0123456789', options: {} };
    expect((await startFrom('198.51.100.61', vars, { ...body, ticket })).status).toBe(201);
    expect((await startFrom('198.51.100.61', vars, body)).status).toBe(200);
    // An API-key caller is a trusted backend: no check.
    expect((await startFrom('198.51.100.61', { ...vars, API_KEYS: 'k' }, {}, { Authorization: 'Bearer k' })).status).toBe(201);
    // A run token attaches to its run, but never starts a run that skipped the check.
    const created = (await (
      await startFrom('198.51.100.61', vars, { requestId: `human-tok-${crypto.randomUUID()}`, options: {}, ticket })
    ).json()) as any;
    const attach = await startFrom(
      '198.51.100.61',
      vars,
      { requestId: created.requestId, options: {} },
      { Authorization: `Bearer ${created.token}` },
    );
    expect(attach.status).toBe(200);
    const sneaky = await startFrom(
      '198.51.100.61',
      vars,
      { requestId: `human-new-${crypto.randomUUID()}`, options: {} },
      { Authorization: `Bearer ${created.token}` },
    );
    expect(sneaky.status).toBe(403);
    expect((await errorOf(sneaky)).code).toBe('human_check_failed');
  });

  it('counts refused tickets as failed authentications: 429 after 20 from one client', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 21; i++) {
      last = await startFrom('198.51.100.62', vars, {
        options: {},
        ticket: `v1.guess${i}.x`,
        requestId: `guess-${i}-${crypto.randomUUID()}`,
      });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 20).every((s) => s === 403)).toBe(true);
    expect(statuses[20]).toBe(429);
    expect(last!.headers.get('Retry-After')).toBe('60');
    expect((await errorOf(last!)).code).toBe('rate_limited');
  });

  it('tells a widget what it needs in GET /v1/agents', async () => {
    const listed = (await (await callWith(vars, '/v1/agents')).json()) as any;
    expect(listed.agents).toEqual([{ name: 'widget', description: '', default: true, humanCheck: 'ticket' }]);
  });
});
