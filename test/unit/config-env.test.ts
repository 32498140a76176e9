// API keys and CORS depend on deployment variables: call the Worker's handler
// with the test env plus those variables (same bindings, same Durable Objects).
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import { BASE, readSse } from './helpers';

function callWith(vars: Record<string, string>, path: string, init: RequestInit = {}) {
  return worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars }, createExecutionContext());
}

const start = (vars: Record<string, string>, headers: Record<string, string> = {}, body: object = {}) =>
  callWith(vars, '/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ query: 'q', options: { tokens: 1, delayMs: 0 }, ...body }),
  });

describe('API_KEYS', () => {
  const keys = { API_KEYS: 'key-one, key-two' };

  it('requires a key to start a run and to list agents', async () => {
    const res = await start(keys);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.code).toBe('unauthorized');
    expect((await start(keys, { Authorization: 'Bearer nope' })).status).toBe(401);
    expect((await callWith(keys, '/v1/agents')).status).toBe(401);
    expect((await callWith(keys, '/v1/agents', { headers: { Authorization: 'Bearer key-two' } })).status).toBe(200);
  });

  it('starts with any configured key; the key also opens the run', async () => {
    const res = await start(keys, { Authorization: 'Bearer key-two' });
    expect(res.status).toBe(201);
    const { requestId, token } = (await res.json()) as any;
    const byKey = await callWith(keys, `/v1/runs/${requestId}`, { headers: { Authorization: 'Bearer key-one' } });
    expect(byKey.status).toBe(200);
    const byToken = await callWith(keys, `/v1/runs/${requestId}?token=${token}`);
    expect(byToken.status).toBe(200);
    // A key opens every run, so it counts only as a header, never from a URL (logs).
    const keyInUrl = await callWith(keys, `/v1/runs/${requestId}?token=key-one`);
    expect(keyInUrl.status).toBe(404);
  });

  it('asks for a key before looking at the body, and a token holder of an existing run gets 409 without the right token', async () => {
    const bad = await callWith(keys, '/v1/runs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"agent":"openai"',
    });
    expect(bad.status).toBe(401);
    expect((await start(keys, { Authorization: 'Bearer key-one' }, { requestId: 'keyed-exists' })).status).toBe(201);
    const wrongToken = await start(keys, { Authorization: 'Bearer not-the-token' }, { requestId: 'keyed-exists' });
    expect(wrongToken.status).toBe(409);
    expect(((await wrongToken.json()) as any).error.code).toBe('run_exists');
  });

  it('tells a Bearer that is not a key nothing about the agents: it can only attach', async () => {
    for (const body of [
      { agent: 'nope' },
      { agent: 'openai' },
      { options: { bogus: 1 } },
      { requestId: 'keyed-never-started', agent: 'nope' },
    ]) {
      const res = await start(keys, { Authorization: 'Bearer guess' }, body);
      expect(res.status).toBe(401);
      const text = await res.text();
      expect(text).not.toMatch(/demo|openai|available/);
    }
    // the run's token still attaches, whatever the body says
    const created = await start(keys, { Authorization: 'Bearer key-one' }, { requestId: 'keyed-attach-2' });
    const { token } = (await created.json()) as any;
    const again = await start(
      keys,
      { Authorization: `Bearer ${token}` },
      { requestId: 'keyed-attach-2', agent: 'nope', options: { x: 1 } },
    );
    expect(again.status).toBe(200);
  });

  it('lets the run token (without a key) attach to an existing run, not create one', async () => {
    const created = await start(keys, { Authorization: 'Bearer key-one' }, { requestId: 'keyed-attach' });
    const { token } = (await created.json()) as any;
    const again = await start(keys, { Authorization: `Bearer ${token}` }, { requestId: 'keyed-attach' });
    expect(again.status).toBe(200);
    const fresh = await start(keys, { Authorization: `Bearer ${token}` }, { requestId: 'keyed-new' });
    expect(fresh.status).toBe(401);
  });
});

describe('a model agent with a base URL that cannot work', () => {
  it.each(['not a url', 'ftp://models.example/v1', 'https://user:s3cret@models.example/v1'])(
    'refuses %s at the start with agent_not_configured, naming the variable, not its value',
    async (base) => {
      const vars = { OPENAI_BASE_URL: base };
      const res = await start(vars, {}, { agent: 'openai', options: {} });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as any;
      expect(error.code).toBe('agent_not_configured');
      expect(error.message).toMatch(/OPENAI_BASE_URL/);
      expect(error.message).not.toMatch(/s3cret|ftp:|not a url/);
      const listed = (await (await callWith(vars, '/v1/agents')).json()) as any;
      expect(listed.agents.map((a: any) => a.name)).not.toContain('openai');
    },
  );
});

describe('CORS', () => {
  const vars = { ALLOWED_ORIGINS: 'https://site.example, https://other.example' };
  const preflight = (origin: string, v = vars) =>
    callWith(v, '/v1/runs/x/events', {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization, last-event-id',
      },
    });

  it('answers the preflight for Authorization and Last-Event-ID from an allowed origin', async () => {
    const res = await preflight('https://site.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('https://site.example');
    const allowed = res.headers.get('Access-Control-Allow-Headers')!.toLowerCase();
    expect(allowed).toContain('authorization');
    expect(allowed).toContain('last-event-id');
    expect(res.headers.get('Access-Control-Allow-Methods')).toContain('POST');
  });

  it('matches an origin configured with a trailing slash', async () => {
    const res = await preflight('https://site.example', { ALLOWED_ORIGINS: 'https://site.example/' });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('https://site.example');
  });

  it('gives no CORS grant to other origins, or to anyone when ALLOWED_ORIGINS is unset', async () => {
    expect((await preflight('https://evil.example')).headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect((await preflight('https://site.example', {} as any)).headers.get('Access-Control-Allow-Origin')).toBeNull();
  });

  it('exposes the run identity headers on a streamed start, and allows * when configured', async () => {
    const res = await start({ ALLOWED_ORIGINS: '*' }, { Origin: 'https://any.example', Accept: 'text/event-stream' });
    expect(res.status).toBe(200);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    const exposed = res.headers.get('Access-Control-Expose-Headers')!.toLowerCase();
    expect(exposed).toContain('x-request-id');
    expect(exposed).toContain('x-run-token');
    const { events } = await readSse(res);
    expect(events.at(-1)!.event).toBe('done');
  });

  it('adds CORS headers to error answers too, so the browser can read them', async () => {
    const res = await callWith(vars, '/v1/runs', {
      method: 'POST',
      headers: { Origin: 'https://site.example', 'Content-Type': 'application/json' },
      body: '{',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('https://site.example');
  });
});

describe('rate limiting of run starts', () => {
  const from = (ip: string, headers: Record<string, string> = {}) =>
    callWith({}, '/v1/runs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': ip, ...headers },
      body: '{}', // invalid on purpose: the limit applies before any work
    });

  it('answers 429 rate_limited with Retry-After after 30 starts in 10 s from one address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await from('203.0.113.7')).status);
    expect(statuses.slice(0, 30).every((s) => s === 400)).toBe(true);
    const limited = await from('203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('10');
    expect(((await limited.json()) as any).error.code).toBe('rate_limited');
    expect((await from('203.0.113.8')).status).toBe(400); // another address is unaffected
  });

  it('does not limit loopback clients or API-key callers', async () => {
    for (let i = 0; i < 35; i++) expect((await from('127.0.0.1')).status).toBe(400);
    const keyed = (ip: string) =>
      callWith({ API_KEYS: 'k' }, '/v1/runs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': ip, Authorization: 'Bearer k' },
        body: '{}',
      });
    for (let i = 0; i < 35; i++) expect((await keyed('203.0.113.9')).status).toBe(400);
  });
});

describe('a broken deployment variable', () => {
  it('answers 500 internal as JSON, without the reason or a stack trace, and logs which variable', async () => {
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void logged.push(args.join(' ')));
    const res = await callWith({ HEARTBEAT_MS: 'soon' }, '/v1/agents');
    spy.mockRestore();
    expect(logged.join('\n')).toMatch(/HEARTBEAT_MS: must be an integer/);
    expect(logged.join('\n')).not.toContain('soon');
    expect(res.status).toBe(500);
    const body = (await res.json()) as any;
    expect(body).toEqual({ error: { code: 'internal', message: 'the service is misconfigured; its log names the setting to fix' } });
  });
});
