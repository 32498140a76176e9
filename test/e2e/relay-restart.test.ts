// The runtime dies in the middle of a relay run (SIGKILL: its isolate and
// the upstream request die, the persisted log does not) and starts again on
// the same port. An upstream that sends SSE ids is asked again with
// Last-Event-ID and the log ends with every event exactly once, in order;
// one that sends none cannot be resumed, and the run fails `interrupted`.
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDevServer, type DevServer } from '../support/dev-server';
import { generatedText, startFakeUpstreams, type FakeUpstreams } from '../support/fake-upstreams';
import { createRun, range, readSse, seqsOf, textOf, waitForState, type SseEvent } from '../support/sse';

const N = 400;
let fake: FakeUpstreams;
let servers: DevServer[] = [];

beforeAll(async () => {
  fake = await startFakeUpstreams();
});
afterAll(async () => {
  await fake?.close();
});
afterEach(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  for (const s of servers) rmSync(s.persistDir, { recursive: true, force: true });
  servers = [];
});

/** Each profile's upstream path is unique to the test, so its requests can be told apart. */
function profiles(base: string, tag: string) {
  return {
    // runs=1: a second POST of the requestId is 409 run_exists without the first one's startSecret, as on a real edgestream.
    edge: { agent: 'relay', url: `${base}/gen/edgestream?n=${N}&gap=15&runs=1&t=${tag}`, format: 'edgestream' },
    chat: { agent: 'relay', url: `${base}/gen/ai-sdk?n=${N}&gap=15&ids=1&t=${tag}`, format: 'ai-sdk' },
    genie: { agent: 'relay', url: `${base}/gen/genie?n=${N}&gap=15&t=${tag}`, format: 'genie' },
    deepsearch: { agent: 'relay', url: `${base}/gen/deepsearch?n=${N}&gap=15&t=${tag}`, format: 'deepsearch' },
  };
}

async function start(port: number, tag: string, persistDir?: string) {
  const server = await startDevServer({ port, persistDir, vars: { RETRY_MS: '100', PROFILES: JSON.stringify(profiles(fake.url, tag)) } });
  servers.push(server);
  return server;
}

/** Start a run, read until `seen` events, kill the runtime, start it again; returns what the first reader saw. */
async function interrupted(agent: string, tag: string) {
  const port = await freePort();
  const first = await start(port, tag);
  const { requestId, token } = await createRun(first.url, { agent, query: `restart ${agent}` });
  const auth = { Authorization: `Bearer ${token}` };
  const before = await readSse(`${first.url}/v1/runs/${requestId}/events`, { headers: auth }, (evs) => evs.length >= 80);
  await first.stop('SIGKILL');
  const second = await start(port, tag, first.persistDir);
  return { second, requestId, token, auth, before: before.events };
}

const upstreamCalls = (tag: string) => fake.requests.filter((r) => r.path.endsWith(`t=${tag}`));

describe('a runtime killed mid-relay', () => {
  it.each([
    ['edge', 'edgestream'],
    ['chat', 'ai-sdk'],
  ])('resumes an upstream that sends ids (%s, %s): Last-Event-ID, every event once, in order', async (agent) => {
    const tag = `${agent}-${Date.now()}`;
    const { second, requestId, token, auth, before } = await interrupted(agent, tag);
    const lastSeen = before.at(-1)!.data.seq as number;
    const [resumed, fromStart] = await Promise.all([
      readSse(`${second.url}/v1/runs/${requestId}/events`, { headers: { ...auth, 'Last-Event-ID': String(lastSeen) } }),
      readSse(`${second.url}/v1/runs/${requestId}/events`, { headers: auth }),
    ]);
    const all: SseEvent[] = [...before, ...resumed.events];
    for (const events of [all, fromStart.events]) {
      expect(seqsOf(events)).toEqual(range(1, events.length));
      expect(textOf(events)).toBe(generatedText(N));
      expect(events.filter((e) => e.event === 'delta')).toHaveLength(N);
      expect(events.filter((e) => e.event === 'done').map((e) => e.data.state)).toEqual(['completed']);
      // The result is whole, even where the relay assembles it (ai-sdk): the cursor carried the answer so far.
      expect(events.at(-2)!.data).toMatchObject({ type: 'result', text: generatedText(N) });
    }
    expect(fromStart.events).toEqual(all);
    const calls = upstreamCalls(tag);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.lastEventId).toBeUndefined();
    expect(Number(calls[1]!.lastEventId)).toBeGreaterThan(0);
    expect(calls[1]!.body).toMatchObject({ requestId });
    // An edgestream upstream got the same startSecret both times (it attached); the others none.
    expect(calls[1]!.body.startSecret).toBe(calls[0]!.body.startSecret);
    expect(typeof calls[0]!.body.startSecret).toBe(agent === 'edge' ? 'string' : 'undefined');
    expect(await waitForState(second.url, requestId, token)).toMatchObject({ state: 'completed', lastEventId: all.length });
  });

  it.each([
    ['genie', 'sends no ids'],
    ['deepsearch', 'sends ids that are not positions (its request id on every message)'],
  ])('fails a run whose upstream %s %s with interrupted, and does not ask it again', async (agent) => {
    const tag = `${agent}-${Date.now()}`;
    const { second, requestId, token, auth, before } = await interrupted(agent, tag);
    const lastSeen = before.at(-1)!.data.seq as number;
    const rest = await readSse(`${second.url}/v1/runs/${requestId}/events`, { headers: { ...auth, 'Last-Event-ID': String(lastSeen) } });
    const all = [...before, ...rest.events];
    expect(seqsOf(all)).toEqual(range(1, all.length));
    expect(all.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'interrupted', retryable: true },
      { type: 'done', state: 'failed' },
    ]);
    expect(upstreamCalls(tag)).toHaveLength(1);
    expect(await waitForState(second.url, requestId, token)).toMatchObject({ state: 'failed', error: { code: 'interrupted' } });
  });
});
