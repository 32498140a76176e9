// A run never ends without its `done`: when storage refuses the end, the run
// ends with a small `storage_failed` error instead; when nothing can be
// written, it is not reported as ended until the watchdog alarm stores it.
// Storage is made to fail inside the run's own Durable Object.
import { env } from 'cloudflare:workers';
import { createExecutionContext, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index';
import { BASE, call, createRun, readAll, range, seqs, waitUntilEnded } from './helpers';

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

describe('a storage failure while a run is created', () => {
  /** Make the run's `INSERT INTO run` throw inside the create transaction, before the run exists. */
  async function failCreate(requestId: string): Promise<{ attempts: () => number; restore: () => Promise<void> }> {
    let attempts = 0;
    let restore: () => void = () => {};
    await runInDurableObject(stubFor(requestId), (_o, state) => {
      const sql = state.storage.sql;
      const real = sql.exec;
      sql.exec = ((query: string, ...args: unknown[]) => {
        if (/^\s*INSERT INTO run\b/.test(query)) {
          attempts++;
          throw new Error('SQLITE_FULL: database or disk is full');
        }
        return real.call(sql, query, ...(args as [])) as never;
      }) as typeof sql.exec;
      restore = () => void (sql.exec = real);
    });
    return { attempts: () => attempts, restore: () => runInDurableObject(stubFor(requestId), () => restore()) };
  }
  const tables = (requestId: string) =>
    runInDurableObject(stubFor(requestId), (_o, state) =>
      state.storage.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((r) => r.name),
    );
  const IP = '198.51.100.90';
  const vars = { LIMIT_RUNNING_PER_CLIENT: '1' };
  const start = (requestId: string, headers: Record<string, string> = {}) =>
    worker.fetch(
      new Request(`${BASE}/v1/runs`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': IP, ...headers },
        body: JSON.stringify({ requestId, query: 'q', options: { tokens: 2, delayMs: 0 } }),
      }),
      { ...env, ...vars },
      createExecutionContext(),
    );

  it('answers 500 internal as JSON, leaves no half-made run, frees the client slot, and a retry creates the run', async () => {
    for (const accept of [{}, { Accept: 'text/event-stream' }] as Record<string, string>[]) {
      const requestId = `create-fails-${crypto.randomUUID()}`;
      const failing = await failCreate(requestId);
      const res = await start(requestId, accept);
      expect(res.status).toBe(500);
      expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('internal');
      expect(JSON.stringify(body)).not.toMatch(/SQLITE|\bat .*\.(ts|js):\d+/); // no internal message, no stack
      expect(failing.attempts()).toBeGreaterThan(0);
      // Nothing of the run is left: no tables (the transaction rolled back), no status, no stream.
      expect(await tables(requestId)).toEqual([]);
      expect((await call(`/v1/runs/${requestId}`, { headers: { Authorization: 'Bearer any-token' } })).status).toBe(404);
      await failing.restore();
      // The retry of the same POST creates the run (the client's running slot, LIMIT_RUNNING_PER_CLIENT=1, was given back).
      let retried: Response | undefined;
      const end = Date.now() + 5_000;
      do {
        retried = await start(requestId, accept);
        if (retried.status === 429) await new Promise((r) => setTimeout(r, 50));
      } while (retried.status === 429 && Date.now() < end);
      expect(retried.status).toBe('Accept' in accept ? 200 : 201);
      const token = retried.headers.get('X-Run-Token') ?? ((await retried.json()) as { token: string }).token;
      if ('Accept' in accept) await retried.body!.cancel();
      expect(await waitUntilEnded(requestId, token)).toMatchObject({ state: 'completed' });
      const { events } = await readAll(requestId, token);
      expect(events[0]).toMatchObject({ id: '1', event: 'run' });
      expect(events.at(-1)).toMatchObject({ event: 'done', data: { state: 'completed' } });
    }
  });
});
