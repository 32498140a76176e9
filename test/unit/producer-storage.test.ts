// What never reaches an external run's log: invalid bodies and headers (400
// naming the path), appends storage refused (nothing of them, nor the
// producer's seq), and anything after a lapsed lease, which the run's alarm
// ends with `producer_timeout` and `done` failed.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { MAX_BATCH_EVENTS } from '../../src/run/event-log';
import { MAX_APPEND_BODY_BYTES, MAX_APPEND_EVENTS } from '../../src/schemas';
import { AS_KEY, append, appendOk, callAs, createFeed, delta, errorOf, readFeed, statusOf, stubFor } from './producer-helpers';

const P = (id: string, seq: number, epoch = 0) => ({ id, epoch, seq });

/** The stored producers of a run: id -> [epoch, seq, first_seq, last_seq]. */
const producersOf = (requestId: string) =>
  runInDurableObject(stubFor(requestId), (_o, state) =>
    Object.fromEntries(
      state.storage.sql
        .exec<{ producer_id: string; epoch: number; seq: number; first_seq: number; last_seq: number }>(
          'SELECT * FROM producers ORDER BY producer_id',
        )
        .toArray()
        .map((r) => [r.producer_id, [r.epoch, r.seq, r.first_seq, r.last_seq]]),
    ),
  );

describe('invalid appends', () => {
  const cases: [string, unknown, (string | number)[]][] = [
    ['an empty array', [], []],
    ['not an array', { type: 'delta', messageId: 'm1', text: 'x' }, []],
    ['an unknown type', [{ type: 'shout', text: 'x' }], [0, 'type']],
    ['the run event', [{ type: 'run', agent: 'x', createdAt: 1 }], [0, 'type']],
    ['a missing field', [delta('ok'), { type: 'delta', messageId: 'm1' }], [1, 'text']],
    ['a wrong type of field', [{ type: 'plan', steps: 'one' }], [0, 'steps']],
    ['a field the run sets', [{ ...delta('x'), seq: 99 }], [0]],
    ['an unknown done state', [{ type: 'done', state: 'paused' }], [0, 'state']],
    ['an error without done', [{ type: 'error', code: 'x', message: 'y' }], [0]],
    [
      'an error before done completed',
      [
        { type: 'error', code: 'x', message: 'y' },
        { type: 'done', state: 'completed' },
      ],
      [0],
    ],
    ['an error not right before done', [{ type: 'error', code: 'x', message: 'y' }, delta('z'), { type: 'done', state: 'failed' }], [0]],
    ['an event after done', [{ type: 'done', state: 'completed' }, delta('z')], [1]],
    [
      'a bad error code',
      [
        { type: 'error', code: 'has space', message: 'y' },
        { type: 'done', state: 'failed' },
      ],
      [0, 'code'],
    ],
    ['too many events', Array.from({ length: MAX_APPEND_EVENTS + 1 }, () => delta('x')), []],
  ];

  it.each(cases)('refuses %s with 400 invalid_request naming the path, and stores nothing', async (_name, body, path) => {
    const { requestId, token } = await createFeed();
    const res = await append(requestId, P('b', 0), body);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.issues.map((i: any) => i.path)).toContainEqual(path);
    if (path.length > 0) expect(error.message).toContain(`${path.join('.')}: `);
    expect((await statusOf(requestId, token)).lastEventId).toBe(1);
    expect(await producersOf(requestId)).toEqual({});
  });

  it('names each missing or malformed producer header', async () => {
    const { requestId } = await createFeed();
    const res = await callAs(`/v1/runs/${requestId}/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...AS_KEY, 'Producer-Id': 'has space', 'Producer-Epoch': '-1' },
      body: JSON.stringify([delta('x')]),
    });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.issues.map((i: any) => [i.path[0], i.message])).toEqual([
      ['Producer-Id', 'must match ^[A-Za-z0-9._:-]{1,128}$'],
      ['Producer-Epoch', 'must be a decimal integer 0..9007199254740991'],
      ['Producer-Seq', 'Required'],
    ]);
    expect(await producersOf(requestId)).toEqual({});
  });

  it('refuses a body that is not JSON (400 invalid_json), not sent as JSON (415) or over the size limit (413)', async () => {
    const { requestId, token } = await createFeed();
    expect(await errorOf(await append(requestId, P('b', 0), '[{"type":'))).toMatchObject({ code: 'invalid_json' });
    expect((await append(requestId, P('b', 0), '[]', { 'Content-Type': 'text/plain' })).status).toBe(415);
    const big = [delta('x'.repeat(MAX_APPEND_BODY_BYTES))];
    const tooLarge = await append(requestId, P('b', 0), big);
    expect(tooLarge.status).toBe(413);
    expect(await errorOf(tooLarge)).toMatchObject({ code: 'payload_too_large' });
    // Just under the limit is fine, and stored in parts like any large frame.
    const fits = [delta('y'.repeat(MAX_APPEND_BODY_BYTES - 100))];
    expect(await appendOk(requestId, P('b', 0), fits)).toMatchObject({ firstSeq: 2, lastSeq: 2 });
    await appendOk(requestId, P('b', 1), [{ type: 'done', state: 'completed' }]);
    expect((await readFeed(requestId, token))[1]!.data.text).toHaveLength(MAX_APPEND_BODY_BYTES - 100);
  });
});

describe('storage', () => {
  it('keeps an append below the log batch, so the log never stores part of one on its own', async () => {
    expect(MAX_APPEND_EVENTS).toBeLessThan(MAX_BATCH_EVENTS);
    const { requestId } = await createFeed();
    const ack = await appendOk(
      requestId,
      P('b', 0),
      Array.from({ length: MAX_APPEND_EVENTS }, (_, i) => delta(`${i} `)),
    );
    expect(ack).toMatchObject({ firstSeq: 2, lastSeq: MAX_APPEND_EVENTS + 1 });
    expect(await producersOf(requestId)).toEqual({ b: [0, 0, 2, MAX_APPEND_EVENTS + 1] });
  });

  /** Make the run's statements matching `pattern` throw until restored (a full disk, say). */
  async function failStatements(requestId: string, pattern: RegExp): Promise<() => Promise<void>> {
    let restore: () => void = () => {};
    await runInDurableObject(stubFor(requestId), (_o, state) => {
      const sql = state.storage.sql;
      const real = sql.exec;
      sql.exec = ((query: string, ...args: unknown[]) => {
        if (pattern.test(query)) throw new Error('SQLITE_FULL: database or disk is full');
        return real.call(sql, query, ...(args as [])) as never;
      }) as typeof sql.exec;
      restore = () => void (sql.exec = real);
    });
    return () => runInDurableObject(stubFor(requestId), () => restore());
  }

  it.each([
    ['the producer position', /^INSERT INTO producers/],
    ['the events', /^INSERT INTO events/],
  ])(
    'stores neither events nor the producer seq when storing %s fails; the retry of the same seq is stored once',
    async (_what, pattern) => {
      const { requestId, token } = await createFeed();
      await appendOk(requestId, P('b', 0), [delta('a ')]);
      const restore = await failStatements(requestId, pattern);
      const refused = await append(requestId, P('b', 1), [delta('b ')]);
      expect(refused.status).toBe(500);
      expect((await errorOf(refused)).message).toMatch(/retry with the same Producer-Seq/);
      const refusedEnd = await append(requestId, P('b', 1), [delta('b '), { type: 'done', state: 'completed' }]);
      expect(refusedEnd.status).toBe(500);
      await restore();
      expect(await statusOf(requestId, token)).toMatchObject({ state: 'running', lastEventId: 2 });
      expect(await producersOf(requestId)).toEqual({ b: [0, 0, 2, 2] });
      // Not a duplicate: nothing of it was stored.
      expect(await appendOk(requestId, P('b', 1), [delta('b '), { type: 'done', state: 'completed' }])).toEqual({
        firstSeq: 3,
        lastSeq: 4,
        nextProducerSeq: 2,
        duplicate: false,
      });
      const events = await readFeed(requestId, token);
      expect(events.map((e) => e.data.text ?? e.event)).toEqual(['run', 'a ', 'b ', 'done']);
    },
  );
});

describe('a runtime restart', () => {
  it('leaves an external run running, its producers where they were', async () => {
    const { requestId, token } = await createFeed();
    const ack = await appendOk(requestId, P('b', 0), [delta('before ')]);
    await abortAllDurableObjects(); // the isolate is gone; storage stays
    expect(await appendOk(requestId, P('b', 0), [delta('before ')])).toEqual({ ...ack, duplicate: true });
    expect(await errorOf(await append(requestId, P('b', 2), [delta('x')]))).toMatchObject({ code: 'producer_seq_gap', expectedSeq: 1 });
    await appendOk(requestId, P('b', 1), [delta('after'), { type: 'done', state: 'completed' }]);
    const events = await readFeed(requestId, token);
    expect(events.map((e) => e.data.text ?? e.event)).toEqual(['run', 'before ', 'after', 'done']);
    expect(await statusOf(requestId, token)).toMatchObject({ state: 'completed' });
  });
});

describe('the lease', () => {
  it('fails a run whose producers are silent past the lease with producer_timeout and done failed, by alarm', async () => {
    const { requestId, token } = await createFeed();
    await appendOk(requestId, P('b', 0), [delta('a')]);
    const stub = stubFor(requestId);
    // Within the lease the alarm only reschedules itself.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await statusOf(requestId, token)).state).toBe('running');
    const alarmAt = await runInDurableObject(stub, async (_o, state) => {
      // The lease (60 s) ended a second ago.
      state.storage.sql.exec('UPDATE producers SET acked_at = ?', Date.now() - 61_000);
      return state.storage.getAlarm();
    });
    expect(alarmAt).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const status = await statusOf(requestId, token);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'producer_timeout', retryable: true } });
    expect(status.error.message).toMatch(/60 s/);
    const events = await readFeed(requestId, token);
    expect(events.map((e) => [e.event, e.data.code ?? e.data.state ?? e.data.text ?? null])).toEqual([
      ['run', null],
      ['delta', 'a'],
      ['error', 'producer_timeout'],
      ['done', 'failed'],
    ]);
    expect(await errorOf(await append(requestId, P('b', 1), [delta('late')]))).toMatchObject({ code: 'run_ended', state: 'failed' });
  });

  it('counts from the run’s creation when nothing was appended, and is renewed by every acknowledged append', async () => {
    const { requestId, token } = await createFeed();
    const stub = stubFor(requestId);
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec('UPDATE run SET created_at = ? WHERE id = 1', Date.now() - 61_000);
    });
    // An append now renews it, so the alarm does not end the run.
    await appendOk(requestId, P('b', 0), [delta('a')]);
    await runDurableObjectAlarm(stub);
    expect((await statusOf(requestId, token)).state).toBe('running');
    // A retry of that append renews it too.
    await runInDurableObject(stub, (_o, state) => state.storage.sql.exec('UPDATE producers SET acked_at = ?', Date.now() - 61_000));
    expect(await appendOk(requestId, P('b', 0), [delta('a')])).toMatchObject({ duplicate: true });
    await runDurableObjectAlarm(stub);
    expect((await statusOf(requestId, token)).state).toBe('running');

    const { requestId: silentId, token: silentToken } = await createFeed();
    await runInDurableObject(stubFor(silentId), (_o, state) => {
      state.storage.sql.exec('UPDATE run SET created_at = ? WHERE id = 1', Date.now() - 61_000);
    });
    await runDurableObjectAlarm(stubFor(silentId));
    expect(await statusOf(silentId, silentToken)).toMatchObject({ state: 'failed', error: { code: 'producer_timeout' } });
    await callAs(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  });

  it('sets the alarm no later than the lease end', async () => {
    const { requestId } = await createFeed();
    await appendOk(requestId, P('b', 0), [delta('a')]);
    const ackedAt = Date.now() - 55_000;
    await runInDurableObject(stubFor(requestId), (_o, state) => state.storage.sql.exec('UPDATE producers SET acked_at = ?', ackedAt));
    await runDurableObjectAlarm(stubFor(requestId)); // not due yet: it reschedules from what storage says
    const next = await runInDurableObject(stubFor(requestId), (_o, state) => state.storage.getAlarm());
    // 5 s from now, before the 15 s watchdog.
    expect(next).toBe(ackedAt + 60_000);
  });
});
