// An outside producer through a real `wrangler dev`, with the requests a
// Python or Java backend would make (curl-equivalent fetches): create an
// external run with the API key, append with producer headers, retry an
// append whose answer was lost, hit a gap, end with done; a browser-like
// EventSource follows live and a late reader replays the same log from disk.
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/dev-server';
import { storedRun } from '../support/do-storage';
import { range, readSse, seqsOf, textOf } from '../support/sse';
import { AS_BACKEND, BACKEND_KEY } from './backend';

const PROFILES = { demo: { agent: 'demo', default: true }, support: { agent: 'external', leaseSeconds: 30 } };

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer({ vars: { API_KEYS: BACKEND_KEY, PROFILES: JSON.stringify(PROFILES) } });
});
afterAll(async () => {
  await server?.stop();
});

/** `curl -X POST $H/v1/runs/$ID/events -H "Authorization: Bearer $KEY" -H 'Producer-Id: ...' ... -d '[...]'` */
function append(
  requestId: string,
  producer: { id: string; epoch: number; seq: number },
  events: unknown[],
  auth: Record<string, string> = AS_BACKEND,
) {
  return fetch(`${server.url}/v1/runs/${requestId}/events`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...auth,
      'Producer-Id': producer.id,
      'Producer-Epoch': String(producer.epoch),
      'Producer-Seq': String(producer.seq),
    },
    body: JSON.stringify(events),
  });
}

/** Follow the run with an EventSource until `done`; every event's data in order. */
function follow(url: string): Promise<Record<string, any>[]> {
  return new Promise((resolve, reject) => {
    const got: Record<string, any>[] = [];
    const es = new EventSource(url);
    const timer = setTimeout(() => {
      es.close();
      reject(new Error(`no done after 30 s; got ${got.length} events`));
    }, 30_000);
    for (const type of ['run', 'status', 'plan', 'delta', 'tool', 'result', 'error', 'done']) {
      es.addEventListener(type, (e) => {
        const message = e as MessageEvent<string>;
        // [contract] a connection error also arrives as `error`, without data.
        if (message.data === undefined) return;
        got.push(JSON.parse(message.data));
        if (type === 'done') {
          clearTimeout(timer);
          es.close();
          resolve(got);
        }
      });
    }
  });
}

describe('an external producer through wrangler dev', () => {
  it('creates, appends with producer headers, retries, ends; readers live and after get one copy of each event', async () => {
    // Anonymous callers may not create an external run.
    const anonymous = await fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'support', query: 'hello' }),
    });
    expect(anonymous.status).toBe(401);

    const created = await fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...AS_BACKEND },
      body: JSON.stringify({ agent: 'support', query: 'Where is my order?', requestId: `e2e-producer-${Date.now()}` }),
    });
    expect(created.status).toBe(201);
    const { requestId, token } = (await created.json()) as { requestId: string; token: string };
    const live = follow(`${server.url}/v1/runs/${requestId}/events?token=${token}`);

    const producer = { id: 'orders-backend-1', epoch: 0 };
    const first = [
      { type: 'status', status: 'searching', message: 'Looking the order up' },
      { type: 'tool', messageId: 'm1', name: 'orders.lookup', phase: 'call', input: { id: 42 } },
    ];
    const ack0 = await append(requestId, { ...producer, seq: 0 }, first);
    expect(ack0.status).toBe(200);
    expect(await ack0.json()).toEqual({ firstSeq: 2, lastSeq: 3, nextProducerSeq: 1, duplicate: false });
    // The answer was lost, say: the backend sends the same append again.
    const retry = await append(requestId, { ...producer, seq: 0 }, first);
    expect(await retry.json()).toEqual({ firstSeq: 2, lastSeq: 3, nextProducerSeq: 1, duplicate: true });
    // The run token reads; it does not write.
    expect(
      (
        await append(requestId, { ...producer, seq: 1 }, [{ type: 'delta', messageId: 'm1', text: 'x' }], {
          Authorization: `Bearer ${token}`,
        })
      ).status,
    ).toBe(401);
    // A gap is refused with the seq to send.
    const gap = await append(requestId, { ...producer, seq: 5 }, [{ type: 'delta', messageId: 'm1', text: 'x' }]);
    expect(gap.status).toBe(409);
    expect(((await gap.json()) as any).error).toMatchObject({ code: 'producer_seq_gap', expectedSeq: 1, receivedSeq: 5 });

    const words = ['Your ', 'order ', 'ships ', 'today.'];
    for (const [i, text] of words.entries()) {
      const res = await append(requestId, { ...producer, seq: 1 + i }, [{ type: 'delta', messageId: 'm1', text }]);
      expect(res.status).toBe(200);
    }
    const end = await append(requestId, { ...producer, seq: 5 }, [
      { type: 'result', messageId: 'm1', text: words.join('') },
      { type: 'done', state: 'completed' },
    ]);
    expect(await end.json()).toEqual({ firstSeq: 8, lastSeq: 9, nextProducerSeq: 6, duplicate: false });
    const after = await append(requestId, { ...producer, seq: 6 }, [{ type: 'delta', messageId: 'm1', text: 'late' }]);
    expect(after.status).toBe(409);
    expect(((await after.json()) as any).error.code).toBe('run_ended');

    const followed = await live;
    expect(followed.map((e) => e.seq)).toEqual(range(1, 9));
    expect(followed.map((e) => e.type)).toEqual(['run', 'status', 'tool', 'delta', 'delta', 'delta', 'delta', 'result', 'done']);
    const replayed = await readSse(`${server.url}/v1/runs/${requestId}/events`, { headers: { Authorization: `Bearer ${token}` } });
    expect(replayed.events.map((e) => e.data)).toEqual(followed);
    expect(seqsOf(replayed.events)).toEqual(range(1, 9));
    expect(textOf(replayed.events)).toBe('Your order ships today.');
    // What the run stored: each event once.
    expect(storedRun(server.persistDir, requestId)!.types).toEqual(followed.map((e) => e.type));
    const status = await (await fetch(`${server.url}/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } })).json();
    expect(status).toMatchObject({ agent: 'support', state: 'completed', lastEventId: 9 });
  });
});
