// The relay agent against local stand-ins for its upstreams, each speaking
// its service's real wire format (test/support/fake-upstreams.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayAgent } from '../../src/agents/relay/relay';
import { RelaySettings } from '../../src/agents/relay/settings';
import { AgentError, type AgentCheckpoint, type AgentInput } from '../../src/agents/types';
import type { AgentEvent } from '../../src/events';
import { freePort } from '../support/dev-server';
import { generatedText, startFakeUpstreams, type FakeUpstreams } from '../support/fake-upstreams';
import { agentContractTests } from './contract';

const SECRET = 'relay-test-secret-0123456789abcdef';
let fake: FakeUpstreams;
beforeAll(async () => {
  fake = await startFakeUpstreams();
});
afterAll(async () => {
  await fake?.close();
});

const settings = (path: string, format: string, extra: object = {}) => RelaySettings.parse({ url: `${fake.url}${path}`, format, ...extra });
const input = (query = 'How do resumable streams work?'): AgentInput<any> => ({
  requestId: 'run-relay-1',
  query,
  messages: [{ role: 'user', content: 'earlier' }],
  options: {},
});
const env = { UPSTREAM_TOKEN: SECRET };

interface Outcome {
  events: AgentEvent[];
  checkpoints: AgentCheckpoint[];
  /** Events yielded before each checkpoint. */
  at: number[];
  error?: AgentError;
}

async function run(
  s: RelaySettings,
  opts: { resumeCursor?: string; skip?: number; env?: object; signal?: AbortSignal } = {},
): Promise<Outcome> {
  const out: Outcome = { events: [], checkpoints: [], at: [] };
  const ctx = {
    env: (opts.env ?? env) as never,
    skip: opts.skip ?? 0,
    settings: s,
    ...(opts.resumeCursor ? { resumeCursor: opts.resumeCursor } : {}),
  };
  try {
    for await (const e of relayAgent.run(input(), opts.signal ?? new AbortController().signal, ctx)) {
      if (e.type === 'checkpoint') {
        out.checkpoints.push(e);
        out.at.push(out.events.length);
      } else out.events.push(e);
    }
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    out.error = err as AgentError;
  }
  return out;
}

const textOf = (events: AgentEvent[]) => events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
const lastRequest = () => fake.requests.at(-1)!;

const CONTRACTS: [string, string, string, object?][] = [
  ['genie', '/f/genie-plain', '/gen/genie?n=400&gap=10'],
  ['deepsearch', '/f/deepsearch-plain', '/gen/deepsearch?n=400&gap=10'],
  ['ai-sdk', '/f/ai-sdk-plain', '/gen/ai-sdk?n=400&gap=10'],
  ['edgestream', '/f/edgestream-plain', '/gen/edgestream?n=400&gap=10'],
  ['text', '/f/text-plain', '/gen/text?n=400&gap=10&ids=1'],
  ['json', '/gen/json?n=20', '/gen/json?n=400&gap=10', { field: 'token' }],
];
for (const [format, plain, long, extra] of CONTRACTS) {
  agentContractTests(`relay (${format})`, () => ({
    agent: relayAgent,
    env,
    input: input(),
    longInput: input('long'),
    settings: settings(plain, format, extra),
    longSettings: settings(long, format, extra),
  }));
}

describe('relay request', () => {
  it('POSTs the default body with the run values, asks for an event stream and sends the secret header', async () => {
    await run(settings('/f/genie-plain', 'genie', { headers: { Authorization: 'secret:UPSTREAM_TOKEN', 'X-Tenant': 'docs' } }));
    const req = lastRequest();
    expect(req.method).toBe('POST');
    expect(req.headers.accept).toBe('text/event-stream');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBe(SECRET);
    expect(req.headers['x-tenant']).toBe('docs');
    expect(req.lastEventId).toBeUndefined();
    expect(req.body).toEqual({
      query: 'How do resumable streams work?',
      requestId: 'run-relay-1',
      messages: [{ role: 'user', content: 'earlier' }],
    });
  });

  it('fills a body template of the service, as the Java and Python services expect it', async () => {
    await run(
      settings('/f/genie-plain', 'genie', { body: { requestId: '{{requestId}}', query: '{{query}}', agentType: 5, isStream: true } }),
    );
    expect(lastRequest().body).toEqual({ requestId: 'run-relay-1', query: 'How do resumable streams work?', agentType: 5, isStream: true });
    await run(
      settings('/f/deepsearch-plain', 'deepsearch', {
        body: { request_id: '{{requestId}}', query: 'Q: {{query}}', history: '{{messages}}' },
      }),
    );
    expect(lastRequest().body).toEqual({
      request_id: 'run-relay-1',
      query: 'Q: How do resumable streams work?',
      history: [{ role: 'user', content: 'earlier' }],
    });
  });

  it('GET sends no body', async () => {
    const out = await run(settings('/f/text-plain', 'text', { method: 'GET' }));
    expect(out.error).toBeUndefined();
    expect(lastRequest()).toMatchObject({ method: 'GET', body: null });
    expect(lastRequest().headers['content-type']).toBeUndefined();
  });

  it('a secret that is not set is agent_not_configured naming it, and nothing is sent', async () => {
    const before = fake.requests.length;
    const out = await run(settings('/f/genie-plain', 'genie', { headers: { Authorization: 'secret:MISSING_TOKEN' } }), { env: {} });
    expect(out.error).toMatchObject({ code: 'agent_not_configured', retryable: false });
    expect(out.error!.message).toContain('MISSING_TOKEN');
    expect(fake.requests.length).toBe(before);
  });

  it('settings that do not parse are agent_misconfigured', async () => {
    const out: AgentEvent[] = [];
    await expect(async () => {
      for await (const e of relayAgent.run(input(), new AbortController().signal, { env: env as never, skip: 0 }))
        if (e.type !== 'checkpoint') out.push(e);
    }).rejects.toMatchObject({ code: 'agent_misconfigured' });
  });
});

describe('relay upstream failures: honest codes, no secret in them', () => {
  const auth = { headers: { Authorization: 'secret:UPSTREAM_TOKEN' } };
  it.each([
    ['/status/401', 'genie', 'upstream_auth', false],
    ['/status/403', 'genie', 'upstream_auth', false],
    ['/status/404', 'genie', 'upstream_rejected', false],
    ['/status/429', 'genie', 'upstream_rate_limited', true],
    ['/status/500', 'genie', 'upstream_unavailable', true],
    ['/status/503', 'genie', 'upstream_unavailable', true],
    ['/redirect', 'genie', 'upstream_rejected', false],
    ['/html', 'genie', 'upstream_malformed', false],
    ['/json-error', 'genie', 'upstream_error', false],
    ['/no-content', 'genie', 'upstream_incomplete', true],
    ['/f/genie-plain?type=text/plain', 'genie', 'upstream_malformed', false],
    ['/f/genie-plain?cut=4', 'genie', 'upstream_disconnected', true],
    ['/f/genie-plain?split=9&cut=4', 'genie', 'upstream_disconnected', true],
    ['/f/genie-no-result', 'genie', 'upstream_incomplete', true],
    ['/f/deepsearch-error', 'deepsearch', 'upstream_error', true],
    ['/f/deepsearch-plain?cut=5', 'deepsearch', 'upstream_disconnected', true],
    ['/f/ai-sdk-plain?truncate=1200', 'ai-sdk', 'upstream_incomplete', true],
    ['/f/edgestream-plain?truncate=1500', 'edgestream', 'upstream_incomplete', true],
    ['/f/text-plain?truncate=69', 'text', 'upstream_incomplete', true],
  ])('%s (%s) fails with %s (retryable %s)', async (path, format, code, retryable) => {
    const out = await run(settings(path, format, auth));
    expect(out.error).toMatchObject({ code, retryable });
    expect(out.error!.message).not.toContain(SECRET);
  });

  it('the 401 code is shown, never the body that quotes the credentials', async () => {
    const out = await run(settings('/status/401', 'genie', auth));
    expect(out.error!.message).toBe('the upstream refused the credentials (HTTP 401: invalid_api_key); check the API key');
  });

  it('an upstream that cannot be reached is upstream_unreachable', async () => {
    const port = await freePort();
    const out = await run(RelaySettings.parse({ url: `http://127.0.0.1:${port}/x`, format: 'text' }));
    expect(out.error).toMatchObject({ code: 'upstream_unreachable', retryable: true });
    expect(out.error!.message).not.toContain(String(port));
  });

  it('no response headers within the idle timeout is upstream_timeout', async () => {
    const started = Date.now();
    const out = await run(settings('/no-headers', 'genie', { idleTimeoutMs: 300 }));
    expect(out.error).toMatchObject({ code: 'upstream_timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('silence mid-stream longer than idleTimeoutMs is upstream_timeout, with what came before kept', async () => {
    const out = await run(settings('/f/genie-plain?stall=4', 'genie', { idleTimeoutMs: 300 }));
    expect(out.error?.code).toBe('upstream_timeout');
    expect(textOf(out.events)).toBe('可恢复的流把每个事件'); // planning, heartbeat, two chunks
  });

  it('RELAY_IDLE_TIMEOUT_MS sets the idle timeout; a profile idleTimeoutMs wins', async () => {
    const started = Date.now();
    expect((await run(settings('/f/genie-plain?stall=2', 'genie'), { env: { RELAY_IDLE_TIMEOUT_MS: '200' } })).error?.code).toBe(
      'upstream_timeout',
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    const slowBeats = settings('/gen/genie?n=10&gap=150', 'genie', { idleTimeoutMs: 1000 });
    expect((await run(slowBeats, { env: { RELAY_IDLE_TIMEOUT_MS: '50' } })).error).toBeUndefined();
  });

  it('cancel aborts the upstream request: the upstream sees its socket close', async () => {
    const abort = new AbortController();
    const events: AgentEvent[] = [];
    const before = fake.requests.length;
    for await (const e of relayAgent.run(input(), abort.signal, {
      env: env as never,
      skip: 0,
      settings: settings('/gen/genie?n=2000&gap=5', 'genie'),
    })) {
      if (e.type === 'checkpoint') continue;
      events.push(e);
      if (events.length === 5) abort.abort();
    }
    const req = fake.requests[before]!;
    await req.closed;
    expect(req.closedEarly()).toBe(true);
    expect(req.written).toBeLessThan(100);
  });
});

describe('relay network chunks', () => {
  it.each([
    ['genie', '/f/genie-plain', {}],
    ['deepsearch', '/f/deepsearch-plain', {}],
    ['ai-sdk', '/f/ai-sdk-plain', {}],
    ['edgestream', '/f/edgestream-plain', {}],
    ['text', '/f/text-plain', {}],
    ['json', '/f/json-plain', { field: 'choices.0.delta.content' }],
  ])('%s gives the same events split mid-line, mid-CRLF and mid-character, or in one burst', async (format, path, extra) => {
    const whole = await run(settings(path, format, extra));
    expect(whole.error).toBeUndefined();
    for (const how of ['?split=1&gap=0', '?split=3&gap=0', '?split=7&gap=1', '?burst=1']) {
      const out = await run(settings(`${path}${how}`, format, extra));
      expect(out.error, how).toBeUndefined();
      expect(out.events, how).toEqual(whole.events);
    }
  });
});

describe('relay checkpoints and resume', () => {
  it('yields a checkpoint after the events of each upstream message with an id', async () => {
    const out = await run(settings('/f/edgestream-plain', 'edgestream'));
    // ids 1..11 (the done at 12 ends the run); `run` (id 1) yields no event.
    expect(out.checkpoints.map((c) => JSON.parse(c.cursor).id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
    // The result (id 11) is held until done: its checkpoint covers 9 events and carries it.
    expect(out.at).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]);
    expect(JSON.parse(out.checkpoints.at(-1)!.cursor).state).toMatchObject({ held: { type: 'result' } });
  });

  it('an upstream without ids, or whose ids are not positions, yields no checkpoint', async () => {
    expect((await run(settings('/f/genie-plain', 'genie'))).checkpoints).toEqual([]);
    expect((await run(settings('/f/deepsearch-plain', 'deepsearch'))).checkpoints).toEqual([]);
    expect((await run(settings('/gen/ai-sdk?n=5', 'ai-sdk'))).checkpoints).toEqual([]);
  });

  it('resume: false yields none either', async () => {
    expect((await run(settings('/f/edgestream-plain', 'edgestream', { resume: false }))).checkpoints).toEqual([]);
  });

  it('on resumeCursor asks again with Last-Event-ID and yields what followed it', async () => {
    const whole = await run(settings('/f/edgestream-plain', 'edgestream'));
    const cut = whole.checkpoints[6]!; // after id 7
    const resumed = await run(settings('/f/edgestream-plain', 'edgestream'), { resumeCursor: cut.cursor });
    expect(lastRequest().lastEventId).toBe('7');
    expect(lastRequest().body).toMatchObject({ requestId: 'run-relay-1' });
    expect([...whole.events.slice(0, whole.at[6]), ...resumed.events]).toEqual(whole.events);
  });

  it('sends an edgestream upstream a startSecret, kept in the cursor: the POST retried after a restart attaches', async () => {
    // ?runs=1: the stand-in refuses a second POST of a requestId with 409 run_exists, as an edgestream deployment does.
    const s = settings('/gen/edgestream?n=30&gap=0&runs=1&t=attach', 'edgestream');
    const whole = await run(s);
    expect(whole.error).toBeUndefined();
    const secret = lastRequest().body.startSecret;
    expect(secret).toMatch(/^[\x21-\x7e]{16,256}$/);
    const cut = whole.checkpoints[10]!;
    const resumed = await run(s, { resumeCursor: cut.cursor });
    expect(resumed.error).toBeUndefined();
    expect(lastRequest().lastEventId).toBe(JSON.parse(cut.cursor).id);
    expect(lastRequest().body).toMatchObject({ requestId: 'run-relay-1', startSecret: secret });
    expect([...whole.events.slice(0, whole.at[10]), ...resumed.events]).toEqual(whole.events);
    // A fresh start gets a fresh secret; without the cursor's, the same requestId is refused.
    const again = await run(s);
    expect(again.error?.code).toBe('upstream_rejected');
    expect(lastRequest().body.startSecret).not.toBe(secret);
  });

  it('sends no startSecret to other formats, and adds it to an edgestream body template', async () => {
    await run(settings('/gen/ai-sdk?n=3&ids=1', 'ai-sdk'));
    expect(lastRequest().body).not.toHaveProperty('startSecret');
    await run(settings('/gen/edgestream?n=3', 'edgestream', { body: { requestId: '{{requestId}}', query: '{{query}}', agent: 'demo' } }));
    expect(lastRequest().body).toEqual({
      requestId: 'run-relay-1',
      query: 'How do resumable streams work?',
      agent: 'demo',
      startSecret: expect.stringMatching(/^[\x21-\x7e]{16,256}$/),
    });
  });

  it('yields no checkpoint before the skip events it knows the log holds', async () => {
    const whole = await run(settings('/f/edgestream-plain', 'edgestream'));
    const resumed = await run(settings('/f/edgestream-plain', 'edgestream'), { resumeCursor: whole.checkpoints[3]!.cursor, skip: 3 });
    expect(resumed.at.every((n) => n >= 3)).toBe(true);
    expect(resumed.at[0]).toBe(3);
  });

  it('a format that assembles its result carries the answer so far in the cursor: the resumed result is whole', async () => {
    const path = '/gen/ai-sdk?n=40&gap=60&ids=1';
    const whole = await run(settings(path, 'ai-sdk'));
    expect(whole.error).toBeUndefined();
    // At most one stateful checkpoint a second: a 2.4 s stream has a few, not 40.
    expect(whole.checkpoints.length).toBeGreaterThanOrEqual(2);
    expect(whole.checkpoints.length).toBeLessThan(6);
    const k = whole.checkpoints.length - 1;
    const resumed = await run(settings(path, 'ai-sdk'), { resumeCursor: whole.checkpoints[k]!.cursor });
    expect(resumed.error).toBeUndefined();
    const before = whole.events.slice(0, whole.at[k]);
    expect(textOf([...before, ...resumed.events])).toBe(generatedText(40));
    expect(resumed.events.at(-1)).toMatchObject({ type: 'result', messageId: 'msg-gen', text: generatedText(40) });
  });

  it('a cursor it did not make fails the run interrupted', async () => {
    const out = await run(settings('/f/edgestream-plain', 'edgestream'), { resumeCursor: '7' });
    expect(out.error).toMatchObject({ code: 'interrupted', retryable: true });
  });
});
