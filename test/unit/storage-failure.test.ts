// A run never ends without its `done`: when storage refuses the end, the run
// ends with a small `storage_failed` error instead; when nothing can be
// written, it is not reported as ended until the watchdog alarm stores it.
// Storage is made to fail inside the run's own Durable Object.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, createRun, readAll, range, seqs, waitUntilEnded } from './helpers';

const stubFor = (requestId: string) => env.RUNS.get(env.RUNS.idFromName(requestId));

/**
 * Make the run's INSERTs into `events` throw while `fails(args)` says so
 * (SQLite refusing the write: disk full, row too big). Returns a restore function.
 */
async function failInserts(requestId: string, fails: (frames: string) => boolean): Promise<() => Promise<void>> {
  let restore: () => void = () => {};
  await runInDurableObject(stubFor(requestId), (_o, state) => {
    const sql = state.storage.sql;
    const real = sql.exec;
    sql.exec = ((query: string, ...args: unknown[]) => {
      if (/^INSERT INTO events/.test(query) && fails(String(args[2]))) throw new Error('SQLITE_FULL: database or disk is full');
      return real.call(sql, query, ...(args as [])) as never;
    }) as typeof sql.exec;
    restore = () => void (sql.exec = real);
  });
  return () => runInDurableObject(stubFor(requestId), () => restore());
}

const cancel = (requestId: string, token: string) =>
  call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });

describe('storage failures at the end of a run', () => {
  it('a refused end is replaced by a small storage_failed error and done, with gap-free seqs', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1000, delayMs: 20 } });
    let refused = 0;
    const restore = await failInserts(requestId, (frames) => frames.includes('event: done') && refused++ === 0);
    const res = await cancel(requestId, token);
    expect(res.status).toBe(202);
    expect(((await res.json()) as any).state).toBe('failed');
    await restore();
    const { events } = await readAll(requestId, token);
    expect(seqs(events)).toEqual(range(1, events.length));
    expect(events.slice(-2).map((e) => [e.event, e.data.code ?? e.data.state])).toEqual([
      ['error', 'storage_failed'],
      ['done', 'failed'],
    ]);
    expect(events.at(-2)!.data.retryable).toBe(true);
    expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
    expect(refused).toBe(2); // the cancelled end was refused once; the storage_failed end was stored
  });

  it('when nothing can be written the run is not reported as ended, and the watchdog alarm ends it later', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1000, delayMs: 20 } });
    const restore = await failInserts(requestId, (frames) => frames.includes('event: done'));
    await cancel(requestId, token);
    const status = (await (await call(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as any;
    expect(status.state).toBe('running'); // never "ended" without a done in the log
    await restore();
    expect(await runDurableObjectAlarm(stubFor(requestId))).toBe(true);
    const ended = await waitUntilEnded(requestId, token);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'storage_failed', retryable: true } });
    const { events } = await readAll(requestId, token);
    expect(seqs(events)).toEqual(range(1, events.length));
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { state: 'failed' } });
  });
});

describe('a storage failure while the agent runs', () => {
  it('ends the run with storage_failed and done; what could not be stored is never seen', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 200, delayMs: 5 } });
    let failed = false;
    const restore = await failInserts(requestId, (frames) => !failed && frames.includes('event: delta') && (failed = true));
    const status = await waitUntilEnded(requestId, token);
    await restore();
    expect(failed).toBe(true);
    expect(status).toMatchObject({ state: 'failed', error: { code: 'storage_failed' } });
    const { events } = await readAll(requestId, token);
    expect(seqs(events)).toEqual(range(1, events.length));
    expect(events.slice(-2).map((e) => e.event)).toEqual(['error', 'done']);
    expect(events.filter((e) => e.event === 'delta').length).toBeLessThan(200);
  });
});
