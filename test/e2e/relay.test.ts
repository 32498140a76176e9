// The relay agent end to end: wrangler dev with relay profiles (PROFILES,
// secrets as --var) -> the run's Durable Object -> local stand-ins for the
// Java agent service, the Python search service and an AI SDK route,
// speaking their real wire formats. What the upstream streams becomes a
// run: resumable, readable by many, cancellable.
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCuttingProxy, type CuttingProxy } from '../support/cutting-proxy';
import { startDevServer, type DevServer } from '../support/dev-server';
import { generatedText, startFakeUpstreams, type FakeUpstreams } from '../support/fake-upstreams';
import { createRun, range, readSse, seqsOf, textOf, waitForState } from '../support/sse';

const GENIE_TOKEN = 'genie-e2e-secret-0123456789abcdef';
const N = 250;
let fake: FakeUpstreams;
let server: DevServer;
let proxy: CuttingProxy;

function profiles(base: string) {
  const javaBody = { requestId: '{{requestId}}', query: '{{query}}', agentType: 5, isStream: true };
  return {
    genie: {
      agent: 'relay',
      description: 'The Java agent service',
      default: true,
      url: `${base}/gen/genie?n=${N}&gap=12`,
      format: 'genie',
      headers: { Authorization: 'secret:GENIE_TOKEN' },
      body: javaBody,
    },
    'genie-long': { agent: 'relay', url: `${base}/gen/genie?n=5000&gap=10`, format: 'genie', body: javaBody },
    deepsearch: {
      agent: 'relay',
      url: `${base}/f/deepsearch-plain?gap=20`,
      format: 'deepsearch',
      body: { request_id: '{{requestId}}', query: '{{query}}', stream: true },
    },
    chat: { agent: 'relay', url: `${base}/f/ai-sdk-plain`, format: 'ai-sdk' },
    // A run deadline of 2 s against an upstream still streaming (50 s of it), and one that stalls (open, silent).
    'slow-deadline': { agent: 'relay', url: `${base}/gen/genie?n=5000&gap=10&t=slow`, format: 'genie', maxRunSeconds: 2 },
    'stall-deadline': { agent: 'relay', url: `${base}/f/genie-plain?stall=3&t=stall`, format: 'genie', maxRunSeconds: 2 },
    refused: { agent: 'relay', url: `${base}/status/401`, format: 'genie', headers: { Authorization: 'secret:GENIE_TOKEN' } },
    unset: { agent: 'relay', url: `${base}/f/genie-plain`, format: 'genie', headers: { Authorization: 'secret:NOT_SET_ANYWHERE' } },
  };
}

beforeAll(async () => {
  fake = await startFakeUpstreams();
  server = await startDevServer({
    vars: { PROFILES: JSON.stringify(profiles(fake.url)), GENIE_TOKEN, RETRY_MS: '50', HEARTBEAT_MS: '1000' },
  });
  proxy = await startCuttingProxy(server.port, 300);
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await fake?.close();
});

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('relay runs through wrangler dev', () => {
  it('lists the relay profiles', async () => {
    const { agents } = (await (await fetch(`${server.url}/v1/agents`)).json()) as { agents: { name: string; default: boolean }[] };
    expect(agents.map((a) => a.name)).toEqual([
      'genie',
      'genie-long',
      'deepsearch',
      'chat',
      'slow-deadline',
      'stall-deadline',
      'refused',
      'unset',
    ]);
    expect(agents.find((a) => a.default)?.name).toBe('genie');
  });

  it('a reader cut mid-run resumes with Last-Event-ID and gets every event once, in order', async () => {
    const before = fake.requests.length;
    const { requestId, token } = await createRun(server.url, { agent: 'genie', query: '如何断点续传？' });
    const url = `${server.url}/v1/runs/${requestId}/events?token=${token}`;
    const [partial, whole] = await Promise.all([readSse(url, {}, (evs) => evs.length >= 40), readSse(url)]);
    const rest = await readSse(url, { headers: { 'Last-Event-ID': String(partial.events.at(-1)!.data.seq) } });
    const resumed = [...partial.events, ...rest.events];
    // run, plan, N deltas, result, done.
    expect(seqsOf(resumed)).toEqual(range(1, N + 4));
    expect(seqsOf(whole.events)).toEqual(range(1, N + 4));
    expect(textOf(resumed)).toBe(generatedText(N));
    expect(whole.events.map((e) => e.event)).toEqual(['run', 'plan', ...Array(N).fill('delta'), 'result', 'done']);
    expect(whole.events.at(-2)!.data).toMatchObject({ type: 'result', text: generatedText(N), data: { agentType: 'react' } });
    expect(whole.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed' });
    // The upstream got the Java service's body, filled in, and the secret as the profile said.
    const upstream = fake.requests.slice(before).find((r) => r.path.startsWith('/gen/genie'))!;
    expect(upstream.body).toEqual({ requestId, query: '如何断点续传？', agentType: 5, isStream: true });
    expect(upstream.headers.authorization).toBe(GENIE_TOKEN);
    expect(whole.raw + rest.raw).not.toContain(GENIE_TOKEN);
    expect(server.output()).not.toContain(GENIE_TOKEN);
  });

  it('an EventSource behind a connection cut every 300 ms ends with every event exactly once', async () => {
    const { requestId, token } = await createRun(server.url, { agent: 'genie', query: 'cut' });
    const got = await new Promise<{ seqs: number[]; text: string; done?: string }>((resolve, reject) => {
      const out: { seqs: number[]; text: string; done?: string } = { seqs: [], text: '' };
      const es = new EventSource(`${proxy.url}/v1/runs/${requestId}/events?token=${token}`);
      const timer = setTimeout(() => (es.close(), reject(new Error(`no done; ${out.seqs.length} events`))), 90_000);
      for (const type of ['run', 'plan', 'delta', 'result', 'error', 'done']) {
        es.addEventListener(type, (e) => {
          const message = e as MessageEvent<string>;
          if (message.data === undefined) return; // a connection error, not the run's
          const data = JSON.parse(message.data);
          out.seqs.push(data.seq);
          if (type === 'delta') out.text += data.text;
          if (type === 'done') {
            out.done = data.state;
            clearTimeout(timer);
            es.close();
            resolve(out);
          }
        });
      }
    });
    expect(proxy.cuts()).toBeGreaterThan(0);
    expect(got.seqs).toEqual(range(1, N + 4));
    expect(got.text).toBe(generatedText(N));
    expect(got.done).toBe('completed');
  });

  it('cancel closes the upstream socket', async () => {
    const before = fake.requests.length;
    const { requestId, token } = await createRun(server.url, { agent: 'genie-long', query: 'long' });
    await readSse(
      `${server.url}/v1/runs/${requestId}/events?token=${token}`,
      {},
      (evs) => evs.filter((e) => e.event === 'delta').length >= 5,
    );
    const cancel = await fetch(`${server.url}/v1/runs/${requestId}/cancel`, { method: 'POST', headers: auth(token) });
    expect(cancel.status).toBe(202);
    const upstream = fake.requests.slice(before).find((r) => r.path.startsWith('/gen/genie?n=5000'))!;
    await upstream.closed; // the stand-in saw its socket close
    expect(upstream.closedEarly()).toBe(true);
    expect(upstream.written).toBeLessThan(2000);
    expect(await waitForState(server.url, requestId, token)).toMatchObject({ state: 'cancelled' });
  });

  it.each([
    ['slow-deadline', '/gen/genie?n=5000&gap=10&t=slow'],
    ['stall-deadline', '/f/genie-plain?stall=3&t=stall'],
  ])('the run deadline aborts the upstream request (%s)', async (agent, path) => {
    const before = fake.requests.length;
    const started = Date.now();
    const { requestId, token } = await createRun(server.url, { agent, query: 'deadline' });
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'deadline_exceeded' },
      { type: 'done', state: 'failed' },
    ]);
    expect(read.events.filter((e) => e.event === 'delta').length).toBeGreaterThan(0);
    expect(read.events.some((e) => e.event === 'result')).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    const upstream = fake.requests.slice(before).find((r) => r.path === path)!;
    await upstream.closed; // the stand-in saw its socket close
    expect(upstream.closedEarly()).toBe(true);
    if (agent === 'slow-deadline') expect(upstream.written).toBeLessThan(1000);
    expect(await waitForState(server.url, requestId, token)).toMatchObject({ state: 'failed', error: { code: 'deadline_exceeded' } });
  });

  it("relays the Python search service's stages, answer chunks and final answer", async () => {
    const { requestId, token } = await createRun(server.url, { agent: 'deepsearch', query: 'SSE 如何断点续传？' });
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.map((e) => e.event)).toEqual([
      'run',
      'status',
      'status',
      'status',
      'tool',
      'delta',
      'delta',
      'delta',
      'delta',
      'result',
      'done',
    ]);
    expect(read.events[1]!.data).toMatchObject({ status: 'query_decomposition', message: '正在分解查询...' });
    expect(textOf(read.events)).toBe('浏览器的 EventSource 断线后自动重连，并发送 Last-Event-ID；服务端从该 id 之后补发。');
    expect(read.events.at(-2)!.data.text).toBe(textOf(read.events));
    const upstream = fake.requests.find((r) => r.path.startsWith('/f/deepsearch-plain') && r.body?.request_id === requestId)!;
    expect(upstream.body).toEqual({ request_id: requestId, query: 'SSE 如何断点续传？', stream: true });
  });

  it('relays an AI SDK UI message stream', async () => {
    const { requestId, token } = await createRun(server.url, { agent: 'chat', query: 'hi' });
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(textOf(read.events)).toBe('Resumable streams keep every token.');
    expect(read.events.at(-2)!.data).toMatchObject({ type: 'result', messageId: 'msg-8Kx2Lq', data: { finishReason: 'stop' } });
    expect(read.events.filter((e) => e.event === 'tool').map((e) => e.data.name)).toEqual(['search', 'search', 'data-progress']);
  });

  it('an upstream 401 ends the run with upstream_auth, and the secret appears nowhere', async () => {
    const { requestId, token } = await createRun(server.url, { agent: 'refused', query: 'q' });
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'upstream_auth', retryable: false },
      { type: 'done', state: 'failed' },
    ]);
    const status = await (await fetch(`${server.url}/v1/runs/${requestId}`, { headers: auth(token) })).text();
    expect(read.raw + status).not.toContain(GENIE_TOKEN);
    expect(server.output()).not.toContain(GENIE_TOKEN);
  });

  it('a secret that is not set ends the run with agent_not_configured naming it', async () => {
    const before = fake.requests.length;
    const { requestId, token } = await createRun(server.url, { agent: 'unset', query: 'q' });
    const read = await readSse(`${server.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(read.events.at(-2)!.data).toMatchObject({ type: 'error', code: 'agent_not_configured', retryable: false });
    expect(read.events.at(-2)!.data.message).toContain('NOT_SET_ANYWHERE');
    expect(fake.requests.slice(before).some((r) => r.path.startsWith('/f/genie-plain'))).toBe(false);
  });

  it('a client may not set options: the upstream is the deployer’s choice', async () => {
    const res = await fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'genie', query: 'q', options: { url: 'http://evil.test/' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe('invalid_request');
  });
});
