// Run tokens are stored only as hashes, carry an HMAC with TOKEN_SECRET, and
// never sit in a cache; a start secret lets a client whose answer was lost attach.
import { env } from 'cloudflare:workers';
import { createExecutionContext, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index';
import { BASE, readSse } from './helpers';

type Vars = Record<string, string>;
const callWith = (vars: Vars, path: string, init: RequestInit = {}) =>
  worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars }, createExecutionContext());
const start = (vars: Vars, body: object, headers: Record<string, string> = {}) =>
  callWith(vars, '/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ query: 'q', options: { tokens: 2, delayMs: 0 }, ...body }),
  });
const status = (vars: Vars, requestId: string, token: string) =>
  callWith(vars, `/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } });
const stored = (requestId: string) =>
  runInDurableObject(env.RUNS.get(env.RUNS.idFromName(requestId)), (_o, state) =>
    JSON.stringify(state.storage.sql.exec('SELECT * FROM run').toArray()),
  );

const SECRET = 'a-start-secret-of-the-client-0123456789';

describe('run tokens', () => {
  it('are stored as hashes only, and every answer carrying one says no-store', async () => {
    const res = await start({}, { requestId: 'tok-hash' });
    expect(res.status).toBe(201);
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    const { token } = (await res.json()) as any;
    const row = await stored('tok-hash');
    expect(row).not.toContain(token);
    expect(row).toContain('sha256:');
    expect((await status({}, 'tok-hash', token)).status).toBe(200);

    const streamed = await start({}, { requestId: 'tok-hash-stream' }, { Accept: 'text/event-stream' });
    expect(streamed.headers.get('X-Run-Token')).toBeTruthy();
    expect(streamed.headers.get('Cache-Control')).toContain('no-store');
    expect(streamed.headers.get('Cache-Control')).toContain('no-cache');
    await readSse(streamed);
  });

  it('carry an HMAC over the requestId with TOKEN_SECRET; a forged or borrowed one opens nothing', async () => {
    const vars = { TOKEN_SECRET: 'a-deployment-token-secret-0123456789abcdef' };
    const a = (await (await start(vars, { requestId: 'tok-mac-a' })).json()) as any;
    const b = (await (await start(vars, { requestId: 'tok-mac-b' })).json()) as any;
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
    expect((await status(vars, 'tok-mac-a', a.token)).status).toBe(200);
    expect((await callWith(vars, `/v1/runs/tok-mac-a/events?token=${a.token}`)).status).toBe(200);
    // Another run's token, a tampered MAC, and a token without one: all 404 (the Worker refuses them).
    const [random] = a.token.split('.');
    for (const wrong of [b.token, `${random}.${'A'.repeat(22)}`, random]) {
      const res = await status(vars, 'tok-mac-a', wrong);
      expect(res.status).toBe(404);
      expect(((await res.json()) as any).error.code).toBe('run_not_found');
    }
    // Without the secret the same token is checked by the run itself and still works.
    expect((await status({}, 'tok-mac-a', a.token)).status).toBe(200);
  });

  it("with TOKEN_SECRET: a forged token is refused by the Worker without waking the run's Durable Object", async () => {
    const vars = { TOKEN_SECRET: 'a-deployment-token-secret-0123456789abcdef' };
    const a = (await (await start(vars, { requestId: 'tok-mac-wake' })).json()) as any;
    const b = (await (await start(vars, { requestId: 'tok-mac-wake-b' })).json()) as any;
    // The Worker with a RUNS namespace that counts every use of it (get, idFromName, ...).
    let uses = 0;
    const RUNS = new Proxy(env.RUNS, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          uses++;
          return value.apply(target, args);
        };
      },
    });
    const counted = (path: string, token: string, init: RequestInit = {}) =>
      worker.fetch(
        new Request(`${BASE}${path}`, { ...init, headers: { Authorization: `Bearer ${token}` } }),
        { ...env, ...vars, RUNS },
        createExecutionContext(),
      );
    const [random] = a.token.split('.');
    for (const forged of [b.token, `${random}.${'A'.repeat(22)}`, random]) {
      for (const [path, init] of [
        ['/v1/runs/tok-mac-wake', {}],
        ['/v1/runs/tok-mac-wake/events', {}],
        ['/v1/runs/tok-mac-wake/events', { method: 'HEAD' }],
        ['/v1/runs/tok-mac-wake/cancel', { method: 'POST' }],
      ] as const) {
        const res = await counted(path, forged, init);
        expect(res.status).toBe(404);
        await res.body?.cancel();
      }
    }
    expect(uses).toBe(0);
    // The right token reaches the run: the namespace is used.
    const ok = await counted('/v1/runs/tok-mac-wake', a.token);
    expect(ok.status).toBe(200);
    expect(uses).toBeGreaterThan(0);
  });

  it('of runs stored before hashing (plain tokens in the row) still open them', async () => {
    await start({}, { requestId: 'tok-legacy' });
    await runInDurableObject(env.RUNS.get(env.RUNS.idFromName('tok-legacy')), (_o, state) => {
      state.storage.sql.exec("UPDATE run SET token = 'legacy-plain-token-value'");
    });
    // A fresh object instance reads the row again: abort the current one.
    const stub = env.RUNS.get(env.RUNS.idFromName('tok-legacy'));
    await runInDurableObject(stub, (_o, state) => state.abort()).catch(() => {});
    expect((await status({}, 'tok-legacy', 'legacy-plain-token-value')).status).toBe(200);
    expect((await status({}, 'tok-legacy', 'another-token')).status).toBe(404);
  });
});

describe('a start secret', () => {
  it('lets a repeated POST without the token attach, with a new token that opens the run', async () => {
    const first = await start({}, { requestId: 'sec-attach', startSecret: SECRET, options: { tokens: 3, delayMs: 0 } });
    expect(first.status).toBe(201);
    const { token } = (await first.json()) as any;
    expect(await stored('sec-attach')).not.toContain(SECRET);

    const again = await start({}, { requestId: 'sec-attach', startSecret: SECRET });
    expect(again.status).toBe(200);
    expect(again.headers.get('Cache-Control')).toBe('no-store');
    const attached = (await again.json()) as any;
    expect(attached.requestId).toBe('sec-attach');
    expect(attached.token).not.toBe(token);
    expect((await status({}, 'sec-attach', attached.token)).status).toBe(200);
    expect((await status({}, 'sec-attach', token)).status).toBe(200); // the first one still works

    const streamed = await start({}, { requestId: 'sec-attach', startSecret: SECRET }, { Accept: 'text/event-stream' });
    expect(streamed.status).toBe(200);
    const newest = streamed.headers.get('X-Run-Token')!;
    const { events } = await readSse(streamed);
    expect(events.filter((e) => e.event === 'delta')).toHaveLength(3); // the same run: its 3 deltas, not a new run's 2
    expect((await status({}, 'sec-attach', newest)).status).toBe(200);
  });

  it('that does not match (or is missing) is still 409 run_exists', async () => {
    await start({}, { requestId: 'sec-wrong', startSecret: SECRET });
    for (const body of [{ startSecret: 'another-secret-0123456789' }, {}]) {
      const res = await start({}, { requestId: 'sec-wrong', ...body });
      expect(res.status).toBe(409);
      expect(((await res.json()) as any).error.code).toBe('run_exists');
    }
  });

  it('must be 16..256 printable ASCII characters', async () => {
    for (const startSecret of ['short', 'x'.repeat(257), 'has spaces in it ok?', 'ünïcode-secret-value']) {
      const res = await start({}, { startSecret });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.message).toMatch(/^startSecret: /);
    }
  });
});
