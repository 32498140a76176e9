import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { MAX_RELEASED_IDS, RUNNING_RETRY_AFTER_MAX_S, type AdmitRequest } from '../../src/limits/usage-object';

/** A counter object of its own for each test. */
const freshCounter = () => env.USAGE.get(env.USAGE.idFromName(`test:${crypto.randomUUID()}`));

/** Noon UTC on a day in the future: alarms (set by the real clock) never fire during a test. */
const NOON = Date.UTC(2030, 0, 1, 12);
const MIDNIGHT = Date.UTC(2030, 0, 2);
const S = 1000;

const admitReq = (runId: string, over: Partial<AdmitRequest> = {}): AdmitRequest => ({
  runId,
  leaseUntil: NOON + 3600 * S,
  maxRunning: 0,
  tokensPerDay: 0,
  rowsPerDay: 0,
  now: NOON,
  ...over,
});

/** Tables of ours in an object's SQLite (workerd keeps its own `_cf_` ones). */
function userTables(state: DurableObjectState): string[] {
  return state.storage.sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
    .toArray()
    .map((r) => r.name);
}

describe('UsageObject leases', () => {
  it('refuses with rate_limited at maxRunning unexpired leases and admits again once a lease expires', async () => {
    const usage = freshCounter();
    expect(await usage.admit(admitReq('a', { maxRunning: 2, leaseUntil: NOON + 10 * S }))).toEqual({ ok: true });
    expect(await usage.admit(admitReq('b', { maxRunning: 2, leaseUntil: NOON + 20 * S }))).toEqual({ ok: true });
    const refused = await usage.admit(admitReq('c', { maxRunning: 2 }));
    expect(refused).toEqual({
      ok: false,
      code: 'rate_limited',
      message: 'this client has as many runs going at once as it may; retry when one has ended, in 10 s',
      retryAfterS: 10,
    });
    expect(await usage.admit(admitReq('c', { maxRunning: 2, now: NOON + 10 * S }))).toEqual({ ok: true });
    expect((await usage.snapshot(NOON + 10 * S)).running).toBe(2);
  });

  it('does not limit running runs when maxRunning is 0', async () => {
    const usage = freshCounter();
    for (let i = 0; i < 50; i++) expect((await usage.admit(admitReq(`r${i}`))).ok).toBe(true);
    expect((await usage.snapshot(NOON)).running).toBe(50);
  });

  it('tells a refused client to retry when the earliest lease ends, capped, and at least in 1 s', async () => {
    const far = freshCounter();
    await far.admit(admitReq('a', { maxRunning: 1, leaseUntil: NOON + 3600 * S }));
    expect(await far.admit(admitReq('b', { maxRunning: 1 }))).toMatchObject({ retryAfterS: RUNNING_RETRY_AFTER_MAX_S });
    const near = freshCounter();
    await near.admit(admitReq('a', { maxRunning: 1, leaseUntil: NOON + 200 }));
    expect(await near.admit(admitReq('b', { maxRunning: 1 }))).toMatchObject({ retryAfterS: 1 });
    const mid = freshCounter();
    await mid.admit(admitReq('a', { maxRunning: 1, leaseUntil: NOON + 4500 }));
    expect(await mid.admit(admitReq('b', { maxRunning: 1 }))).toMatchObject({ retryAfterS: 5 });
  });

  it('admits a run that already holds a lease again, counting it once', async () => {
    const usage = freshCounter();
    expect(await usage.admit(admitReq('a', { maxRunning: 1, leaseUntil: NOON + 10 * S }))).toEqual({ ok: true });
    expect(await usage.admit(admitReq('a', { maxRunning: 1, leaseUntil: NOON + 60 * S }))).toEqual({ ok: true });
    expect((await usage.snapshot(NOON)).running).toBe(1);
    expect((await usage.admit(admitReq('b', { maxRunning: 1 }))).ok).toBe(false);
    // The repeat extended the lease: at +30 s it still holds.
    expect((await usage.admit(admitReq('b', { maxRunning: 1, now: NOON + 30 * S }))).ok).toBe(false);
  });

  it('frees the slot on release and counts the usage once however often the release is repeated', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a', { maxRunning: 1 }));
    await usage.release({ runId: 'a', tokens: 120, rows: 7, now: NOON });
    await usage.release({ runId: 'a', tokens: 120, rows: 7, now: NOON + S });
    expect(await usage.snapshot(NOON + S)).toEqual({ running: 0, tokens: 120, rows: 7 });
    expect(await usage.admit(admitReq('b', { maxRunning: 1 }))).toEqual({ ok: true });
  });

  it('counts the usage of a run whose lease expired before its release', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a', { leaseUntil: NOON + S }));
    await usage.release({ runId: 'a', tokens: 5, rows: 2, now: NOON + 60 * S });
    expect(await usage.snapshot(NOON + 60 * S)).toEqual({ running: 0, tokens: 5, rows: 2 });
  });

  it('counts a run admitted again after its release (a refused start retried) when it is released again', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a'));
    await usage.release({ runId: 'a', tokens: 0, rows: 0, now: NOON });
    await usage.admit(admitReq('a'));
    expect((await usage.snapshot(NOON)).running).toBe(1);
    await usage.release({ runId: 'a', tokens: 9, rows: 1, now: NOON });
    expect(await usage.snapshot(NOON)).toEqual({ running: 0, tokens: 9, rows: 1 });
  });

  it('ignores usage figures that are not counts', async () => {
    const usage = freshCounter();
    await usage.release({ runId: 'a', tokens: Number.NaN, rows: -3, now: NOON });
    await usage.release({ runId: 'b', tokens: 2.6, rows: Number.POSITIVE_INFINITY, now: NOON });
    expect(await usage.snapshot(NOON)).toEqual({ running: 0, tokens: 3, rows: 0 });
  });
});

describe('UsageObject daily budgets', () => {
  it("refuses with quota_exceeded once the day's tokens reach the budget, until the next UTC midnight", async () => {
    const usage = freshCounter();
    const late = MIDNIGHT - 3600 * S; // 23:00 UTC
    expect(await usage.admit(admitReq('a', { tokensPerDay: 100, now: late }))).toEqual({ ok: true });
    await usage.release({ runId: 'a', tokens: 99, rows: 0, now: late });
    expect((await usage.admit(admitReq('b', { tokensPerDay: 100, now: late }))).ok).toBe(true); // 99 < 100
    await usage.release({ runId: 'b', tokens: 1, rows: 0, now: late });
    expect(await usage.admit(admitReq('c', { tokensPerDay: 100, now: late }))).toEqual({
      ok: false,
      code: 'quota_exceeded',
      message: 'this client has used its daily model token budget; retry after midnight UTC, in 3600 s',
      retryAfterS: 3600,
    });
    expect(await usage.admit(admitReq('c', { tokensPerDay: 100, now: MIDNIGHT - 1500 }))).toMatchObject({ retryAfterS: 2 });
    expect(await usage.admit(admitReq('c', { tokensPerDay: 100, now: MIDNIGHT - 1 }))).toMatchObject({ retryAfterS: 1 });
    expect(await usage.admit(admitReq('c', { tokensPerDay: 100, now: MIDNIGHT, leaseUntil: MIDNIGHT + 60 * S }))).toEqual({
      ok: true,
    });
    expect(await usage.snapshot(MIDNIGHT)).toEqual({ running: 1, tokens: 0, rows: 0 });
  });

  it("refuses once the day's log rows reach the budget, naming event storage", async () => {
    const usage = freshCounter();
    await usage.release({ runId: 'a', tokens: 0, rows: 50, now: NOON });
    const refused = await usage.admit(admitReq('b', { rowsPerDay: 50 }));
    expect(refused).toMatchObject({ ok: false, code: 'quota_exceeded', retryAfterS: 12 * 3600 });
    expect(refused.ok || refused.message).toMatch(/daily event storage budget/);
    expect((await usage.admit(admitReq('b', { rowsPerDay: 51 }))).ok).toBe(true);
  });

  it('does not limit a budget of 0', async () => {
    const usage = freshCounter();
    await usage.release({ runId: 'a', tokens: 1e9, rows: 1e9, now: NOON });
    expect(await usage.admit(admitReq('b'))).toEqual({ ok: true });
  });

  it('puts usage on the UTC day of its release', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a', { now: MIDNIGHT - S, leaseUntil: MIDNIGHT + 3600 * S }));
    await usage.release({ runId: 'a', tokens: 40, rows: 4, now: MIDNIGHT + S });
    expect(await usage.snapshot(MIDNIGHT + S)).toEqual({ running: 0, tokens: 40, rows: 4 });
    expect((await usage.admit(admitReq('b', { tokensPerDay: 40, now: MIDNIGHT + 2 * S }))).ok).toBe(false);
  });

  it('checks budgets before the running limit: a client out of budget is told to wait for midnight', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a', { maxRunning: 1 }));
    await usage.release({ runId: 'x', tokens: 10, rows: 0, now: NOON });
    expect(await usage.admit(admitReq('b', { maxRunning: 1, tokensPerDay: 10 }))).toMatchObject({
      code: 'quota_exceeded',
      retryAfterS: 12 * 3600,
    });
  });

  it("words refusals for the deployment as the service's, without internal detail", async () => {
    const usage = freshCounter();
    await usage.release({ runId: 'a', tokens: 10, rows: 0, now: NOON });
    const refused = await usage.admit(admitReq('b', { tokensPerDay: 10, scope: 'deployment' }));
    expect(refused.ok || refused.message).toBe(
      'this service has used its daily model token budget for anonymous use; retry after midnight UTC, in 43200 s',
    );
  });
});

describe('UsageObject storage', () => {
  it('forgets past days and expired leases on the next call', async () => {
    const usage = freshCounter();
    await usage.admit(admitReq('a', { leaseUntil: NOON + S }));
    await usage.release({ runId: 'b', tokens: 3, rows: 3, now: NOON });
    await usage.admit(admitReq('c', { now: MIDNIGHT, leaseUntil: MIDNIGHT + S }));
    await runInDurableObject(usage, (_o, state) => {
      const sql = state.storage.sql;
      expect(sql.exec('SELECT run_id FROM lease').toArray()).toEqual([{ run_id: 'c' }]);
      expect(sql.exec('SELECT count(*) AS n FROM usage').one().n).toBe(0);
      expect(sql.exec('SELECT count(*) AS n FROM released').one().n).toBe(0);
    });
  });

  it('keeps at most MAX_RELEASED_IDS released run ids', async () => {
    const usage = freshCounter();
    await runInDurableObject(usage, async (instance, state) => {
      for (let i = 0; i < MAX_RELEASED_IDS + 50; i++) await instance.release({ runId: `r${i}`, tokens: 1, rows: 0, now: NOON });
      const sql = state.storage.sql;
      expect(sql.exec('SELECT count(*) AS n FROM released').one().n).toBe(MAX_RELEASED_IDS);
      // The oldest went first.
      expect(sql.exec("SELECT count(*) AS n FROM released WHERE run_id = 'r0'").one().n).toBe(0);
      expect(sql.exec(`SELECT count(*) AS n FROM released WHERE run_id = 'r${MAX_RELEASED_IDS + 49}'`).one().n).toBe(1);
    });
  });

  it('writes nothing for a snapshot of an unused object', async () => {
    const usage = freshCounter();
    expect(await usage.snapshot()).toEqual({ running: 0, tokens: 0, rows: 0 });
    await runInDurableObject(usage, async (_o, state) => {
      expect(userTables(state)).toEqual([]);
      expect(await state.storage.getAlarm()).toBeNull();
    });
  });

  it('schedules its alarm for the next UTC midnight, or the end of the last lease if later', async () => {
    const usage = freshCounter();
    const now = Date.now();
    const nextMidnight = (Math.floor(now / 86_400_000) + 1) * 86_400_000;
    await usage.admit(admitReq('a', { now, leaseUntil: now + 1000 }));
    await runInDurableObject(usage, async (_o, state) => expect(await state.storage.getAlarm()).toBe(nextMidnight));
    await usage.admit(admitReq('b', { now, leaseUntil: nextMidnight + 7200 * S }));
    await runInDurableObject(usage, async (_o, state) => expect(await state.storage.getAlarm()).toBe(nextMidnight + 7200 * S));
  });

  it('deletes all its storage by alarm once its day is over and no lease is left, and works again after', async () => {
    const usage = freshCounter();
    const yesterday = Date.now() - 86_400_000;
    await usage.admit(admitReq('a', { now: yesterday, leaseUntil: yesterday + 60 * S }));
    await usage.release({ runId: 'a', tokens: 10, rows: 1, now: yesterday });
    expect(await runDurableObjectAlarm(usage)).toBe(true);
    await runInDurableObject(usage, async (_o, state) => {
      expect(userTables(state)).toEqual([]);
      expect(await state.storage.getAlarm()).toBeNull();
    });
    expect(await usage.admit(admitReq('b', { maxRunning: 1, now: Date.now(), leaseUntil: Date.now() + 60 * S }))).toEqual({
      ok: true,
    });
    expect((await usage.snapshot()).running).toBe(1);
  });

  it('keeps its storage by alarm while a lease is left or the day has usage, and comes back later', async () => {
    const usage = freshCounter();
    const now = Date.now();
    const nextMidnight = (Math.floor(now / 86_400_000) + 1) * 86_400_000;
    await usage.admit(admitReq('a', { now, leaseUntil: now + 3600 * S }));
    expect(await runDurableObjectAlarm(usage)).toBe(true);
    expect((await usage.snapshot()).running).toBe(1);
    await runInDurableObject(usage, async (_o, state) =>
      expect(await state.storage.getAlarm()).toBe(Math.max(nextMidnight, now + 3600 * S)),
    );
    await usage.release({ runId: 'a', tokens: 4, rows: 0 });
    expect(await runDurableObjectAlarm(usage)).toBe(true);
    expect(await usage.snapshot()).toEqual({ running: 0, tokens: 4, rows: 0 });
    await runInDurableObject(usage, async (_o, state) => expect(await state.storage.getAlarm()).toBe(nextMidnight));
  });
});
