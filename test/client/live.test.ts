// The client library against a real `wrangler dev`.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { AgentRun, resumeRun, startRun, type RunEvent } from '../../src/client/index';
import { demoEventCount, demoText } from '../e2e/demo-reference';
import { startCuttingProxy, type CuttingProxy } from '../support/cutting-proxy';
import { startDevServer, type DevServer } from '../support/dev-server';
import { range, waitForState } from '../support/sse';

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer({ vars: { HEARTBEAT_MS: '1000' } });
});
afterAll(async () => {
  await server?.stop();
});

const backoff = { initialMs: 20, maxMs: 200 };

describe('client library against wrangler dev', () => {
  it('starts a run and iterates every event once, in order, to done', async () => {
    const options = { tokens: 50, delayMs: 2 };
    const run = startRun({ endpoint: server.url, query: 'client live', options });
    const events: RunEvent[] = [];
    for await (const e of run) events.push(e);
    expect(events.map((e) => e.seq)).toEqual(range(1, demoEventCount(50)));
    expect(events.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text).join('')).toBe(demoText('client live', options));
    expect(run.runState).toBe('completed');
    expect(run.state).toBe('closed');
  });

  it('survives a connection cut every 300 ms and gets the same text', async () => {
    // Cuts begin once the start's answer is in: a POST whose answer is lost
    // cannot be attached to (the token was in it; the client then says start_unconfirmed).
    let armed = false;
    const proxy: CuttingProxy = await startCuttingProxy(server.port, 300, () => armed);
    onTestFinished(() => proxy.close());
    const options = { tokens: 300, delayMs: 8 };
    let text = '';
    const seqs: number[] = [];
    const run = startRun({
      endpoint: proxy.url,
      query: 'client cut',
      options,
      backoff,
      heartbeatMs: 1000,
      onEvent: (e) => {
        armed = true;
        seqs.push(e.seq);
        if (e.type === 'delta') text += e.text;
      },
    });
    await run.finished;
    expect(run.error).toBeUndefined();
    expect(proxy.cuts()).toBeGreaterThanOrEqual(2);
    expect(seqs).toEqual(range(1, demoEventCount(300)));
    expect(text).toBe(demoText('client cut', options));
  });

  it('cancel() ends the run as cancelled', async () => {
    const run = startRun({ endpoint: server.url, query: 'cancel me', options: { tokens: 2000, delayMs: 10 } });
    const seen: RunEvent[] = [];
    for await (const e of run) {
      seen.push(e);
      if (e.type === 'delta' && e.seq === 10) await run.cancel();
    }
    expect(run.runState).toBe('cancelled');
    expect(seen.at(-1)!.type).toBe('done');
  });

  it('disconnecting does not cancel; the handle resumes the rest later', async () => {
    const abort = new AbortController();
    const options = { tokens: 100, delayMs: 5 };
    const first: RunEvent[] = [];
    const run = new AgentRun({
      endpoint: server.url,
      query: 'disconnect',
      options,
      signal: abort.signal,
      onEvent: (e) => {
        first.push(e);
        if (first.length === 20) abort.abort();
      },
    });
    await run.finished;
    const handle = run.handle!;
    expect(await waitForState(server.url, handle.requestId, handle.token)).toMatchObject({ state: 'completed' });
    const rest: RunEvent[] = [];
    const resumed = resumeRun({ endpoint: server.url, resume: handle, onEvent: (e) => rest.push(e) });
    await resumed.finished;
    expect([...first, ...rest].map((e) => e.seq)).toEqual(range(1, demoEventCount(100)));
  });
});
