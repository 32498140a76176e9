// The client's part of a profile's human check: the evidence goes in the
// start's body (and in every retry of that start), a 403 human_check_failed
// is final, and neither value is ever persisted.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRun, type RunEvent } from '../../src/client/index';
import { startScriptedServer, type ScriptedServer, type Step } from '../support/scripted-server';
import { range } from '../support/sse';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { initialMs: 10, maxMs: 50, maxAttempts: 8, resetAfterMs: 10_000 };
const TICKET = 'v1.eyJwIjoid2lkZ2V0IiwiZXhwIjoxfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dQ';
const TOKEN = '0.fake-turnstile-token';

function memoryStorage() {
  const store = new Map<string, string>();
  return {
    store,
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
    removeItem: (k: string) => void store.delete(k),
  };
}

async function follow(total: number, script: Step[], extra: Partial<ConstructorParameters<typeof AgentRun>[0]> = {}) {
  server = await startScriptedServer(total, script);
  const events: RunEvent[] = [];
  const run = new AgentRun({ endpoint: server.url, query: 'q', backoff: FAST, heartbeatMs: 100, onEvent: (e) => events.push(e), ...extra });
  await run.finished;
  return { run, events, requests: server.requests };
}

describe('client and the human check', () => {
  it('sends ticket and turnstileToken in the start body, and the same ones in a retried POST', async () => {
    const { run, events, requests } = await follow(10, [{ status: 503 }, { answer: 'reset' }, {}], {
      ticket: TICKET,
      turnstileToken: TOKEN,
    });
    expect(run.runState).toBe('completed');
    expect(events.map((e) => e.seq)).toEqual(range(1, 10));
    expect(requests.map((r) => r.method)).toEqual(['POST', 'POST', 'POST']);
    const bodies = requests.map((r) => JSON.parse(r.body));
    for (const body of bodies) expect(body).toMatchObject({ query: 'q', ticket: TICKET, turnstileToken: TOKEN });
    // one start: the same requestId and startSecret throughout
    expect(new Set(bodies.map((b) => b.requestId)).size).toBe(1);
    expect(new Set(bodies.map((b) => b.startSecret)).size).toBe(1);
  });

  it('sends neither field when none is given', async () => {
    const { requests } = await follow(5, [{}]);
    const body = JSON.parse(requests[0]!.body);
    expect(body).not.toHaveProperty('ticket');
    expect(body).not.toHaveProperty('turnstileToken');
  });

  it('treats 403 human_check_failed as final: the error has that code, and nothing is retried', async () => {
    const states: string[] = [];
    const { run, requests } = await follow(5, [{ status: 403, code: 'human_check_failed' }, {}], {
      turnstileToken: TOKEN,
      onState: (s) => states.push(s),
    });
    expect(run.state).toBe('error');
    expect(run.error).toMatchObject({ code: 'human_check_failed', status: 403, message: 'scripted' });
    expect(requests).toHaveLength(1);
    expect(states).not.toContain('reconnecting');
    // the iterator throws the same error
    await expect(async () => {
      for await (const _ of run) void _;
    }).rejects.toMatchObject({ name: 'AgentRunError', code: 'human_check_failed', status: 403 });
  });

  it('a retried start that meets 403 human_check_failed stops there too', async () => {
    const { run, requests } = await follow(5, [{ status: 503 }, { status: 403, code: 'human_check_failed' }, {}], { ticket: TICKET });
    expect(run.error).toMatchObject({ code: 'human_check_failed', status: 403 });
    expect(requests).toHaveLength(2);
  });

  it('never persists the ticket or the token, and resumes with GETs that carry neither', async () => {
    const storage = memoryStorage();
    const written: string[] = [];
    const { run, requests } = await follow(12, [{ send: 4, then: 'cut' }, { send: 3, then: 'cut' }, {}], {
      ticket: TICKET,
      turnstileToken: TOKEN,
      persistKey: 'k',
      storage,
      onEvent: () => written.push(...storage.store.values()),
    });
    expect(run.runState).toBe('completed');
    expect(written.length).toBeGreaterThan(0);
    for (const value of written) {
      expect(value).not.toContain(TICKET);
      expect(value).not.toContain(TOKEN);
      expect(Object.keys(JSON.parse(value)).sort()).toEqual(['lastEventId', 'requestId', 'token']);
    }
    expect(requests.slice(1).every((r) => r.method === 'GET' && r.body === '')).toBe(true);
  });
});
