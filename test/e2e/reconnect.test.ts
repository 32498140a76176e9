// The `eventsource` package as a real client, through a connection that is
// cut again and again: it reconnects on its own with Last-Event-ID and must
// end with every event exactly once, in order.
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCuttingProxy, type CuttingProxy } from '../support/cutting-proxy';
import { startDevServer, type DevServer } from '../support/dev-server';
import { createRun, range, waitForState } from '../support/sse';
import { demoEventCount, demoText } from './demo-reference';

const EVENT_TYPES = ['run', 'status', 'plan', 'delta', 'tool', 'result', 'error', 'done'];

let server: DevServer;
let proxy: CuttingProxy;

beforeAll(async () => {
  server = await startDevServer({ vars: { RETRY_MS: '50', HEARTBEAT_MS: '1000' } });
  proxy = await startCuttingProxy(server.port, 250);
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

interface Received {
  seqs: number[];
  text: string;
  lastEventIds: string[];
  connectionErrors: number;
  doneState?: string;
}

function follow(url: string, timeoutMs = 90_000): Promise<Received> {
  return new Promise((resolve, reject) => {
    const got: Received = { seqs: [], text: '', lastEventIds: [], connectionErrors: 0 };
    const es = new EventSource(url);
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`no done after ${timeoutMs} ms; got ${got.seqs.length} events`));
    }, timeoutMs);
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (e) => {
        const message = e as MessageEvent<string>;
        // [contract] a connection error also arrives as `error`, but without data.
        if (type === 'error' && message.data === undefined) return;
        const data = JSON.parse(message.data);
        got.seqs.push(data.seq);
        got.lastEventIds.push(message.lastEventId);
        if (type === 'delta') got.text += data.text;
        if (type === 'done') {
          got.doneState = data.state;
          clearTimeout(timer);
          es.close();
          resolve(got);
        }
      });
    }
    es.addEventListener('error', (e) => {
      if ((e as MessageEvent).data !== undefined) return;
      got.connectionErrors++;
      const { code, message } = e as unknown as { code?: number; message?: string };
      if (es.readyState === EventSource.CLOSED) {
        // [spec] a non-200 answer fails the connection for good: say which.
        clearTimeout(timer);
        reject(new Error(`EventSource gave up after ${got.seqs.length} events: ${code ?? ''} ${message ?? ''}`));
      }
    });
  });
}

// One run in about ten of the whole suite (never alone) saw the replay case get no
// event in 90 s; it did not reproduce in isolation. Until it is understood, a failed
// attempt is tried once more, and the follow() error says why EventSource stopped.
describe('EventSource through a connection cut every 250 ms', { retry: 1 }, () => {
  it('gets every event exactly once and in order, and the same text as an uncut read', async () => {
    const query = 'What survives a flaky network?';
    const options = { tokens: 300, delayMs: 10 };
    const { requestId, token } = await createRun(server.url, { query, options });
    const got = await follow(`${proxy.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(proxy.cuts()).toBeGreaterThanOrEqual(3);
    expect(got.connectionErrors).toBeGreaterThanOrEqual(3);
    expect(got.seqs).toEqual(range(1, demoEventCount(300)));
    expect(got.lastEventIds).toEqual(got.seqs.map(String));
    expect(got.text).toBe(demoText(query, options));
    expect(got.doneState).toBe('completed');
  });

  it('also works when the run has finished before the reader connects (all replay)', async () => {
    const query = 'replay only';
    const options = { tokens: 2000, delayMs: 0 };
    const { requestId, token } = await createRun(server.url, { query, options });
    await waitForState(server.url, requestId, token);
    const got = await follow(`${proxy.url}/v1/runs/${requestId}/events?token=${token}`);
    expect(got.seqs).toEqual(range(1, demoEventCount(2000)));
    expect(got.text).toBe(demoText(query, options));
  });
});
