// Readers over real HTTP: many at once, late joiners, clients that vanish
// without a word, hostile text, idempotent POST.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { createRun, range, readSse, seqsOf, textOf, waitForState } from '../support/sse';
import { demoEventCount, demoText } from './demo-reference';

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer({ vars: { HEARTBEAT_MS: '500' } });
});
afterAll(async () => {
  await server?.stop();
});

const eventsUrl = (id: string, token: string) => `${server.url}/v1/runs/${id}/events?token=${token}`;

/**
 * Open a raw HTTP/1.1 reader that reads the first bytes and then stops
 * reading for good, without closing: its TCP window fills and the server's
 * writes to it stop completing. The runtime is never told it is gone.
 */
function vanishingReader(path: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
    socket.setNoDelay(true);
    socket.once('data', () => {
      socket.pause();
      resolve(() => socket.destroy());
    });
    socket.once('error', reject);
  });
}

describe('readers', () => {
  it('ten concurrent readers each get every event exactly once', async () => {
    const query = 'ten readers';
    const options = { tokens: 200, delayMs: 5 };
    const { requestId, token } = await createRun(server.url, { query, options });
    const reads = await Promise.all(range(1, 10).map(() => readSse(eventsUrl(requestId, token))));
    for (const read of reads) {
      expect(seqsOf(read.events)).toEqual(range(1, demoEventCount(200)));
      expect(textOf(read.events)).toBe(demoText(query, options));
    }
  });

  it('a reader joining mid-run gets the replay then live events without gap or duplicate', async () => {
    const options = { tokens: 300, delayMs: 10 };
    const { requestId, token } = await createRun(server.url, { query: 'late joiner', options });
    await readSse(eventsUrl(requestId, token), {}, (evs) => evs.length >= 100);
    const late = await readSse(eventsUrl(requestId, token));
    expect(seqsOf(late.events)).toEqual(range(1, demoEventCount(300)));
  });

  it('a reader that stops reading without closing stalls neither the run nor other readers', async () => {
    const query = 'x'.repeat(2000); // big plan/tool events: more bytes per run
    const options = { tokens: 20_000, delayMs: 0 };
    const { requestId, token } = await createRun(server.url, { query, options });
    const release = await vanishingReader(`/v1/runs/${requestId}/events?token=${token}`);
    try {
      const healthy = await readSse(eventsUrl(requestId, token));
      expect(seqsOf(healthy.events)).toEqual(range(1, demoEventCount(20_000)));
      expect(await waitForState(server.url, requestId, token)).toMatchObject({ state: 'completed' });
    } finally {
      release();
    }
  });

  it('the run outlives a client that aborts mid-stream', async () => {
    const options = { tokens: 100, delayMs: 10 };
    const res = await readSse(
      `${server.url}/v1/runs`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'abandoned', options }),
      },
      (evs) => evs.length >= 15,
    );
    const requestId = res.headers.get('X-Request-Id')!;
    const token = res.headers.get('X-Run-Token')!;
    expect(await waitForState(server.url, requestId, token)).toMatchObject({
      state: 'completed',
      lastEventId: demoEventCount(100),
    });
  });

  it('answers 204 to a reader that already has the last event of an ended run', async () => {
    const { requestId, token } = await createRun(server.url, { query: 'q', options: { tokens: 3, delayMs: 0 } });
    const status = await waitForState(server.url, requestId, token);
    const res = await fetch(eventsUrl(requestId, token), { headers: { 'Last-Event-ID': String(status.lastEventId) } });
    expect(res.status).toBe(204);
  });
});

describe('POST with Accept: text/event-stream', () => {
  const post = (body: object, headers: Record<string, string> = {}) =>
    readSse(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers },
      body: JSON.stringify(body),
    });

  it('streams with identity headers; a retried POST with the token attaches, without it 409', async () => {
    const body = { query: 'idempotent', requestId: `e2e-${Date.now()}`, options: { tokens: 20, delayMs: 5 } };
    const first = await post(body);
    expect(first.status).toBe(200);
    expect(first.headers.get('X-Request-Id')).toBe(body.requestId);
    const token = first.headers.get('X-Run-Token')!;
    const retry = await post(body, { Authorization: `Bearer ${token}`, 'Last-Event-ID': '5' });
    expect(retry.status).toBe(200);
    expect(seqsOf(retry.events)).toEqual(range(6, demoEventCount(20)));
    expect(retry.events).toEqual(first.events.slice(5));
    const stranger = await fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(stranger.status).toBe(409);
    expect(((await stranger.json()) as any).error.code).toBe('run_exists');
  });

  it('never lets hostile text make an extra or malformed event', async () => {
    const query = 'a\n\nevent: done\ndata: {"seq":1}\n\rid: 9\r\n\r\n\u2028\u2029\u0000: x\nretry: 1';
    const read = await post({ query, options: { tokens: 5, delayMs: 0 } });
    expect(seqsOf(read.events)).toEqual(range(1, demoEventCount(5)));
    expect(read.events.filter((e) => e.event === 'done')).toHaveLength(1);
    for (const e of read.events) {
      expect(e.id).toBe(String(e.data.seq));
      expect(e.event).toBe(e.data.type);
    }
    expect(read.events.find((e) => e.event === 'tool')!.data.input.query).toBe(query);
    const lines = read.raw.split('\n').filter(Boolean);
    for (const line of lines) expect(line).toMatch(/^(retry: \d+|id: \d+|event: [a-z]+|data: \{.*\}|: keepalive)$/);
    expect(read.raw).not.toContain('\r');
    expect(read.raw).not.toContain('\u2028');
  });
});
