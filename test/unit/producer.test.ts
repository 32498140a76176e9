// An outside producer: a backend with an API key creates a run of an
// external profile and appends its events over HTTP, idempotently per
// producer (Producer-Id, Producer-Epoch, Producer-Seq). Readers, resume,
// cancel and `done` hold as for any run.
import { describe, expect, it } from 'vitest';
import { range, readSse, seqs, text } from './helpers';
import {
  AS_KEY,
  KEY,
  PROFILES,
  append,
  appendOk,
  callAs,
  callWith,
  createFeed,
  delta,
  errorOf,
  eventsResponse,
  readFeed,
  statusOf,
} from './producer-helpers';

const P = (id: string, seq: number, epoch = 0) => ({ id, epoch, seq });

describe('an external run', () => {
  it('takes appended events and ends with done: a reader following live and one replaying after see the same log', async () => {
    const { requestId, token } = await createFeed();
    const live = eventsResponse(requestId, token).then((res) => readSse(res));
    const first = await appendOk(requestId, P('backend', 0), [
      { type: 'status', status: 'planning', message: 'Planning' },
      { type: 'plan', steps: ['look', 'answer'] },
    ]);
    // seq 1 is the run's `run` event.
    expect(first).toEqual({ firstSeq: 2, lastSeq: 3, nextProducerSeq: 1, duplicate: false });
    expect(await appendOk(requestId, P('backend', 1), [delta('Hel'), delta('lo')])).toEqual({
      firstSeq: 4,
      lastSeq: 5,
      nextProducerSeq: 2,
      duplicate: false,
    });
    const last = await append(requestId, P('backend', 2), [
      { type: 'result', messageId: 'm1', text: 'Hello' },
      { type: 'done', state: 'completed' },
    ]);
    expect(last.status).toBe(200);
    expect(last.headers.get('Producer-Epoch')).toBe('0');
    expect(last.headers.get('Producer-Seq')).toBe('2');
    expect(await last.json()).toEqual({ firstSeq: 6, lastSeq: 7, nextProducerSeq: 3, duplicate: false });

    const followed = (await live).events;
    const replayed = await readFeed(requestId, token);
    expect(followed.map((e) => e.event)).toEqual(['run', 'status', 'plan', 'delta', 'delta', 'result', 'done']);
    expect(seqs(followed)).toEqual(range(1, 7));
    expect(replayed).toEqual(followed);
    expect(followed[0]!.data).toMatchObject({ type: 'run', agent: 'feed' });
    expect(followed[1]!.data).toMatchObject({ requestId, seq: 2, type: 'status', status: 'planning', message: 'Planning' });
    expect(typeof followed[1]!.data.ts).toBe('number');
    expect(text(followed)).toBe('Hello');
    expect(followed.at(-1)!.data.state).toBe('completed');
    expect(await statusOf(requestId, token)).toMatchObject({ agent: 'feed', state: 'completed', lastEventId: 7 });
    // Resume and the end of the stream as for any run.
    expect(seqs(await readFeed(requestId, token, 4))).toEqual([5, 6, 7]);
    expect((await eventsResponse(requestId, token, 7)).status).toBe(204);
  });

  it('ends failed with the appended error and done, and reports that error in the status', async () => {
    const { requestId, token } = await createFeed();
    const error = { type: 'error', code: 'backend_crashed', message: 'the backend gave up', retryable: true };
    await appendOk(requestId, P('b', 0), [delta('partial'), error, { type: 'done', state: 'failed' }]);
    const events = await readFeed(requestId, token);
    expect(events.slice(-2).map((e) => e.data)).toMatchObject([
      { type: 'error', code: 'backend_crashed', retryable: true },
      { type: 'done', state: 'failed' },
    ]);
    expect(await statusOf(requestId, token)).toMatchObject({
      state: 'failed',
      error: { code: 'backend_crashed', message: 'the backend gave up', retryable: true },
    });
  });

  it('stores a message string default and an error retryable default', async () => {
    const { requestId, token } = await createFeed();
    await appendOk(requestId, P('b', 0), [
      { type: 'status', status: 'working' },
      { type: 'error', code: 'x', message: 'y' },
      { type: 'done', state: 'failed' },
    ]);
    const events = await readFeed(requestId, token);
    expect(events[1]!.data).toMatchObject({ status: 'working', message: '' });
    expect(events[2]!.data).toMatchObject({ code: 'x', retryable: false });
  });

  it('goes on after a cancel as any run does: done cancelled, then appends are 409 run_ended', async () => {
    const { requestId, token } = await createFeed();
    await appendOk(requestId, P('b', 0), [delta('a')]);
    const cancelled = await callAs(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    expect(cancelled.status).toBe(202);
    const res = await append(requestId, P('b', 1), [delta('b')]);
    expect(res.status).toBe(409);
    expect(await errorOf(res)).toMatchObject({ code: 'run_ended', state: 'cancelled' });
    // Another producer, too.
    expect(await errorOf(await append(requestId, P('other', 0), [delta('c')]))).toMatchObject({ code: 'run_ended' });
    const events = await readFeed(requestId, token);
    expect(events.map((e) => e.event)).toEqual(['run', 'delta', 'done']);
    expect(events.at(-1)!.data.state).toBe('cancelled');
  });

  it('answers appends after done with 409 run_ended, except a repeat of the append that ended it', async () => {
    const { requestId, token } = await createFeed();
    const end = [delta('x'), { type: 'done', state: 'completed' }];
    const ack = await appendOk(requestId, P('b', 0), end);
    const after = await append(requestId, P('b', 1), [delta('late')]);
    expect(after.status).toBe(409);
    expect(await errorOf(after)).toMatchObject({ code: 'run_ended', state: 'completed' });
    // Its answer was lost, say: the retry is acknowledged with the same seqs.
    expect(await appendOk(requestId, P('b', 0), end)).toEqual({ ...ack, duplicate: true });
    expect((await readFeed(requestId, token)).map((e) => e.event)).toEqual(['run', 'delta', 'done']);
  });
});

describe('idempotent producers', () => {
  it('acknowledges a retried append (same epoch and seq) again with the same seqs, and stores one copy', async () => {
    const { requestId, token } = await createFeed();
    const first = await appendOk(requestId, P('b', 0), [delta('one ')]);
    const again = await append(requestId, P('b', 0), [delta('one ')]);
    expect(again.status).toBe(200);
    expect(again.headers.get('Producer-Seq')).toBe('0');
    expect(await again.json()).toEqual({ firstSeq: first.firstSeq, lastSeq: first.lastSeq, nextProducerSeq: 1, duplicate: true });
    await appendOk(requestId, P('b', 1), [delta('two')]);
    // An older repeat is acknowledged too, without seqs (only a producer's last append is kept).
    expect(await appendOk(requestId, P('b', 0), [delta('one ')])).toEqual({ nextProducerSeq: 2, duplicate: true });
    await appendOk(requestId, P('b', 2), [{ type: 'done', state: 'completed' }]);
    expect(text(await readFeed(requestId, token))).toBe('one two');
  });

  it('refuses a gap with 409 producer_seq_gap and the next expected seq, storing nothing', async () => {
    const { requestId, token } = await createFeed();
    await appendOk(requestId, P('b', 0), [delta('a')]);
    const gap = await append(requestId, P('b', 2), [delta('c')]);
    expect(gap.status).toBe(409);
    expect(gap.headers.get('Producer-Expected-Seq')).toBe('1');
    expect(gap.headers.get('Producer-Received-Seq')).toBe('2');
    const error = await errorOf(gap);
    expect(error).toMatchObject({ code: 'producer_seq_gap', expectedSeq: 1, receivedSeq: 2 });
    expect(error.message).toMatch(/send 1/);
    // A new producer, and a new epoch, start at 0.
    expect(await errorOf(await append(requestId, P('new', 3), [delta('x')]))).toMatchObject({
      code: 'producer_seq_gap',
      expectedSeq: 0,
      receivedSeq: 3,
    });
    expect(await errorOf(await append(requestId, P('b', 1, 1), [delta('x')]))).toMatchObject({ code: 'producer_seq_gap', expectedSeq: 0 });
    expect((await statusOf(requestId, token)).lastEventId).toBe(2);
    // The expected seq is still accepted.
    expect(await appendOk(requestId, P('b', 1), [delta('b')])).toMatchObject({ firstSeq: 3, duplicate: false });
  });

  it('fences a stale epoch with 403 producer_fenced once a newer epoch has written', async () => {
    const { requestId, token } = await createFeed();
    await appendOk(requestId, P('b', 0, 0), [delta('old ')]);
    // The producer restarted: a new epoch, from seq 0.
    expect(await appendOk(requestId, P('b', 0, 1), [delta('new ')])).toMatchObject({ firstSeq: 3, nextProducerSeq: 1 });
    const zombie = await append(requestId, P('b', 1, 0), [delta('zombie')]);
    expect(zombie.status).toBe(403);
    expect(zombie.headers.get('Producer-Epoch')).toBe('1');
    expect(await errorOf(zombie)).toMatchObject({ code: 'producer_fenced', currentEpoch: 1 });
    // Even a repeat of what the old epoch had acknowledged.
    expect((await append(requestId, P('b', 0, 0), [delta('old ')])).status).toBe(403);
    await appendOk(requestId, P('b', 1, 1), [delta('end'), { type: 'done', state: 'completed' }]);
    expect(text(await readFeed(requestId, token))).toBe('old new end');
  });

  it('keeps each producer its own sequence: concurrent producers with different ids each append in order', async () => {
    const { requestId, token } = await createFeed();
    const produce = async (id: string) => {
      const acks = [];
      for (let seq = 0; seq < 12; seq++) acks.push(await appendOk(requestId, P(id, seq), [delta(`${id}${seq} `, id), delta('.', id)]));
      return acks;
    };
    const byProducer = await Promise.all(['a', 'b', 'c'].map(produce));
    await appendOk(requestId, P('a', 12), [{ type: 'done', state: 'completed' }]);
    const events = await readFeed(requestId, token);
    expect(seqs(events)).toEqual(range(1, 1 + 3 * 12 * 2 + 1));
    // Every ack names the seqs its own events got.
    for (const acks of byProducer) {
      for (const [seq, ack] of acks.entries()) {
        expect(ack.nextProducerSeq).toBe(seq + 1);
        expect(ack.lastSeq - ack.firstSeq).toBe(1);
        const mine = events.slice(ack.firstSeq - 1, ack.lastSeq);
        expect(mine.map((e) => e.data.text)).toEqual([`${mine[0]!.data.messageId}${seq} `, '.']);
      }
    }
    // Each producer's events are in its own order, whatever the interleaving.
    for (const id of ['a', 'b', 'c']) {
      const mine = events.filter((e) => e.data.messageId === id && e.data.text !== '.').map((e) => e.data.text);
      expect(mine).toEqual(range(0, 11).map((seq) => `${id}${seq} `));
    }
  });

  it('accepts epochs and seqs up to 2^53-1', async () => {
    const { requestId } = await createFeed();
    const max = Number.MAX_SAFE_INTEGER;
    expect(await appendOk(requestId, P('big', 0, max), [delta('x')])).toMatchObject({ nextProducerSeq: 1 });
    const res = await append(requestId, P('big', 0), [delta('x')], { 'Producer-Epoch': '9007199254740992' });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).issues).toEqual([{ path: ['Producer-Epoch'], message: 'must be a decimal integer 0..9007199254740991' }]);
  });
});

describe('who may create and append', () => {
  const feedBody = JSON.stringify({ query: 'q', agent: 'feed' });
  const post = (vars: Record<string, string>, headers: Record<string, string> = {}) =>
    callWith(vars, '/v1/runs', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: feedBody });

  it('lets only an API-key caller create an external run (401 otherwise) and lists it only for one', async () => {
    const vars = { API_KEYS: KEY, PROFILES: JSON.stringify(PROFILES) };
    expect((await post(vars)).status).toBe(401);
    expect((await post(vars, { Authorization: 'Bearer not-a-key' })).status).toBe(401);
    expect((await post(vars, AS_KEY)).status).toBe(201);
    const listed = (await (await callWith(vars, '/v1/agents', { headers: AS_KEY })).json()) as any;
    expect(listed.agents.map((a: any) => a.name)).toEqual(['demo', 'feed']);
    // Without API_KEYS nobody can hold a key: anonymous callers get 401 and do not see the profile.
    const open = { PROFILES: JSON.stringify(PROFILES) };
    const anonymous = await post(open);
    expect(anonymous.status).toBe(401);
    expect((await errorOf(anonymous)).message).toMatch(/"feed" needs an API key/);
    const anonymousList = (await (await callWith(open, '/v1/agents')).json()) as any;
    expect(anonymousList.agents.map((a: any) => a.name)).toEqual(['demo']);
  });

  it('lets no anonymous or run-token caller append (401), and stores nothing for them', async () => {
    const { requestId, token } = await createFeed();
    const headers = { 'Content-Type': 'application/json', 'Producer-Id': 'b', 'Producer-Epoch': '0', 'Producer-Seq': '0' };
    const body = JSON.stringify([delta('x')]);
    const callers: Record<string, string>[] = [{}, { Authorization: `Bearer ${token}` }, { Authorization: 'Bearer wrong' }];
    for (const auth of callers) {
      const res = await callAs(`/v1/runs/${requestId}/events`, { method: 'POST', headers: { ...headers, ...auth }, body });
      expect(res.status).toBe(401);
      expect(await errorOf(res)).toMatchObject({ code: 'unauthorized' });
    }
    // A run token in the URL is no key either.
    expect((await callAs(`/v1/runs/${requestId}/events?token=${token}`, { method: 'POST', headers, body })).status).toBe(401);
    expect((await statusOf(requestId, token)).lastEventId).toBe(1);
    // The producer's seq 0 is still free.
    expect(await appendOk(requestId, P('b', 0), [delta('x')])).toMatchObject({ firstSeq: 2 });
  });

  it('answers an append to an unknown run 404 run_not_found and to an agent run 409 run_not_external', async () => {
    expect(await errorOf(await append('no-such-feed', P('b', 0), [delta('x')]))).toMatchObject({ code: 'run_not_found' });
    const res = await callAs('/v1/runs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...AS_KEY },
      body: JSON.stringify({ query: 'q', options: { tokens: 1000, delayMs: 20 } }),
    });
    const { requestId, token } = (await res.json()) as any;
    const refused = await append(requestId, P('b', 0), [delta('x')]);
    expect(refused.status).toBe(409);
    expect(await errorOf(refused)).toMatchObject({ code: 'run_not_external' });
    await callAs(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  });

  it('says POST is allowed on the events URL', async () => {
    const res = await callAs('/v1/runs/x/events', { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('Allow')).toBe('GET, HEAD, POST, OPTIONS');
  });
});
