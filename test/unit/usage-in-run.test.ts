// Budgets charged while a run goes (not only when it ends): a public client
// cannot take a budget, its own or the deployment's, far past its end by
// running long paced runs. Each test uses its own client addresses (the
// counters are Durable Objects, kept for the whole file).
import { env } from 'cloudflare:workers';
import { abortAllDurableObjects, createExecutionContext, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import type { AppEnv } from '../../src/env';
import {
  CHARGE_EVERY_ROWS,
  CHARGE_EVERY_TOKENS,
  DEPLOYMENT_COUNTER,
  chargeInterval,
  chargeRun,
  clientCounter,
  releaseRun,
  type UsageLimits,
} from '../../src/limits/usage';
import type { ChargeRequest } from '../../src/limits/usage-object';
import { BASE, type ParsedEvent, range, readSse, seqs } from './helpers';

type Vars = Record<string, string>;
const callWith = async (vars: Vars, path: string, init: RequestInit = {}): Promise<Response> =>
  await worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars }, createExecutionContext());
const startFrom = (ip: string, vars: Vars, body: object, headers: Record<string, string> = {}) =>
  callWith(vars, '/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': ip, ...headers },
    body: JSON.stringify({ query: 'x', ...body }),
  });
/** A paced demo run: about one log row per delta, far more rows than the small budgets below. */
const PACED = { options: { tokens: 3000, delayMs: 1 } };
const counterOf = (name: string) => env.USAGE.get(env.USAGE.idFromName(name));
const rowsOf = async (name: string) => (await counterOf(name).snapshot()).rows;

/** The log rows a run's object holds (event rows and frame parts): what it cost. */
const storedRows = (requestId: string) =>
  runInDurableObject(env.RUNS.get(env.RUNS.idFromName(requestId)), (_o, state) => {
    const sql = state.storage.sql;
    const n = (q: string) => sql.exec<{ n: number }>(q).one().n;
    const parts = n("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'frame_parts'");
    return n('SELECT count(*) AS n FROM events') + (parts ? n('SELECT count(*) AS n FROM frame_parts') : 0);
  });

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Start runs at once and read each to its end; the events of each. */
async function runAll(starts: Array<() => Promise<Response>>): Promise<ParsedEvent[][]> {
  const responses = await Promise.all(starts.map((s) => s()));
  expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
  return Promise.all(responses.map(async (r) => (await readSse(r)).events));
}

/** The run ended honestly on a used-up budget: gap-free, `error` quota_exceeded, then one `done` failed. */
function expectStoppedByBudget(events: ParsedEvent[], who: RegExp): void {
  expect(seqs(events)).toEqual(range(1, events.length));
  expect(events.filter((e) => e.event === 'done')).toHaveLength(1);
  const [error, done] = events.slice(-2);
  expect(error).toMatchObject({ event: 'error', data: { code: 'quota_exceeded', retryable: false } });
  expect(error!.data.message).toMatch(who);
  expect(error!.data.message).toMatch(/daily event storage budget.*retry after midnight UTC/);
  expect(done).toMatchObject({ event: 'done', data: { state: 'failed' } });
}

const SSE = { Accept: 'text/event-stream' };

afterEach(() => vi.restoreAllMocks());

describe('a public client over its row budget mid-run', () => {
  it('is stopped with quota_exceeded and done, charged at most budget + one interval, and refused its next start until midnight', async () => {
    const ip = '203.0.113.130';
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '400' };
    const every = chargeInterval({ ...LIMITS, clientRowsPerDay: 400 })!.rows;
    expect(every).toBe(10);
    const res = await startFrom(ip, vars, PACED, SSE);
    const { events } = await readSse(res);
    expectStoppedByBudget(events, /^this client has/);
    expect(events.length).toBeLessThan(3000);

    // The end settles the rest: the client's counter holds exactly the rows the run wrote.
    const written = await storedRows(events[0]!.data.requestId as string);
    await until(async () => (await rowsOf(clientCounter(ip))) === written);
    console.log(`one run, budget 400 rows, every ${every}: ${written} rows written and charged`);
    expect(written).toBeGreaterThanOrEqual(400);
    expect(written).toBeLessThanOrEqual(400 + every + 25);

    const refused = await startFrom(ip, vars, {});
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error.code).toBe('quota_exceeded');
    const now = new Date();
    const toMidnight = (Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - Date.now()) / 1000;
    expect(Math.abs(Number(refused.headers.get('Retry-After')) - toMidnight)).toBeLessThan(5);
  });

  it('10 concurrent paced runs of one client charge at most budget + one interval each, at the client and the deployment', async () => {
    const ip = '203.0.113.131';
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '1000' };
    const every = chargeInterval({ ...LIMITS, clientRowsPerDay: 1000 })!.rows;
    const deploymentBefore = await rowsOf(DEPLOYMENT_COUNTER);
    const all = await runAll(Array.from({ length: 10 }, () => () => startFrom(ip, vars, PACED, SSE)));
    for (const events of all) expectStoppedByBudget(events, /^this client has/);
    const written = (await Promise.all(all.map((events) => storedRows(events[0]!.data.requestId as string)))).reduce((a, b) => a + b, 0);
    await until(async () => (await rowsOf(clientCounter(ip))) === written);
    console.log(`10 runs, budget 1000 rows, every ${every}: ${written} rows written and charged`);
    expect(written).toBeLessThanOrEqual(1000 + 10 * (every + 25));
    expect((await rowsOf(DEPLOYMENT_COUNTER)) - deploymentBefore).toBe(written);
    expect((await startFrom(ip, vars, {})).status).toBe(429);
  });
});

describe('the deployment over its row budget mid-run', () => {
  it('stops the runs of every anonymous client within one interval each, and refuses new anonymous starts, not API-key ones', async () => {
    const before = await rowsOf(DEPLOYMENT_COUNTER);
    const budget = before + 1000;
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '0', BUDGET_DEPLOYMENT_ROWS_PER_DAY: String(budget) };
    const every = chargeInterval({ ...LIMITS, deploymentRowsPerDay: budget })!.rows;
    const all = await runAll(Array.from({ length: 10 }, (_, i) => () => startFrom(`203.0.113.${140 + i}`, vars, PACED, SSE)));
    for (const events of all) expectStoppedByBudget(events, /^this service has/);
    const written = (await Promise.all(all.map((events) => storedRows(events[0]!.data.requestId as string)))).reduce((a, b) => a + b, 0);
    await until(async () => (await rowsOf(DEPLOYMENT_COUNTER)) === before + written);
    console.log(`10 clients, deployment budget ${budget} rows (${before} used), every ${every}: ${written} rows written and charged`);
    expect(written).toBeLessThanOrEqual(1000 + 10 * (every + 25));

    const refused = await startFrom('203.0.113.150', vars, {});
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error).toMatchObject({
      code: 'quota_exceeded',
      message: expect.stringMatching(/^this service has/),
    });
    expect((await startFrom('203.0.113.150', { ...vars, API_KEYS: 'k' }, {}, { Authorization: 'Bearer k' })).status).toBe(201);
  });
});

describe('callers no budget applies to', () => {
  it('API-key and loopback runs go to their end however small the budgets, and charge nothing', async () => {
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '20', BUDGET_DEPLOYMENT_ROWS_PER_DAY: '20' };
    const deploymentBefore = await rowsOf(DEPLOYMENT_COUNTER);
    const body = { options: { tokens: 300, delayMs: 1 } };
    const all = await runAll([
      () => startFrom('203.0.113.160', { ...vars, API_KEYS: 'k' }, body, { ...SSE, Authorization: 'Bearer k' }),
      () => startFrom('127.0.0.1', vars, body, SSE),
    ]);
    for (const events of all) {
      expect(seqs(events)).toEqual(range(1, events.length));
      expect(events.at(-1)).toMatchObject({ event: 'done', data: { state: 'completed' } });
    }
    expect(await rowsOf(clientCounter('203.0.113.160'))).toBe(0);
    expect(await rowsOf(DEPLOYMENT_COUNTER)).toBe(deploymentBefore);
  });
});

describe('a run restarted by the runtime', () => {
  it('is charged what it wrote once, across the charges before and after the restart and its end', async () => {
    const ip = '203.0.113.170';
    const vars = { BUDGET_CLIENT_ROWS_PER_DAY: '100000', BUDGET_DEPLOYMENT_ROWS_PER_DAY: '10000000' };
    const res = await startFrom(ip, vars, { options: { tokens: 600, delayMs: 2 } }, SSE);
    const first = await readSse(res, (evs) => evs.length >= 250);
    const requestId = first.events[0]!.data.requestId as string;
    const token = res.headers.get('X-Run-Token')!;
    await until(async () => (await rowsOf(clientCounter(ip))) > 0); // charged as it went
    await abortAllDurableObjects(); // the isolate and its agent are gone; storage stays
    const rest = await readSse(
      await callWith(vars, `/v1/runs/${requestId}/events`, {
        headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': String(first.events.at(-1)!.data.seq) },
      }),
    );
    const events = [...first.events, ...rest.events];
    expect(seqs(events)).toEqual(range(1, events.length));
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { state: 'completed' } });
    const written = await storedRows(requestId);
    await until(async () => (await rowsOf(clientCounter(ip))) === written);
    await new Promise((r) => setTimeout(r, 200)); // a late charge would show here
    expect(await rowsOf(clientCounter(ip))).toBe(written);
  });
});

const LIMITS: UsageLimits = {
  runningPerClient: 10,
  clientTokensPerDay: 0,
  clientRowsPerDay: 0,
  deploymentTokensPerDay: 0,
  deploymentRowsPerDay: 0,
};

describe('chargeInterval', () => {
  it('is 1/40 of the smallest budget that applies, at most 500 rows and 2,500 tokens, at least 1; null without budgets', () => {
    const defaults = {
      ...LIMITS,
      clientTokensPerDay: 100_000,
      clientRowsPerDay: 20_000,
      deploymentTokensPerDay: 2_000_000,
      deploymentRowsPerDay: 1_000_000,
    };
    expect(chargeInterval(defaults)).toEqual({ rows: CHARGE_EVERY_ROWS, tokens: CHARGE_EVERY_TOKENS });
    expect(chargeInterval({ ...defaults, clientRowsPerDay: 0 })).toEqual({ rows: 500, tokens: 2500 });
    expect(chargeInterval({ ...defaults, clientRowsPerDay: 4000, deploymentTokensPerDay: 400 })).toEqual({ rows: 100, tokens: 10 });
    expect(chargeInterval({ ...LIMITS, clientRowsPerDay: 3 })).toEqual({ rows: 1, tokens: Infinity });
    expect(chargeInterval(LIMITS)).toBeNull();
  });
});

/** Noon UTC on a day in the future: alarms (set by the real clock) never fire during a test. */
const NOON = Date.UTC(2030, 0, 1, 12);
const chargeReq = (runId: string, over: Partial<ChargeRequest>): ChargeRequest => ({
  runId,
  tokens: 0,
  rows: 0,
  tokensPerDay: 0,
  rowsPerDay: 0,
  now: NOON,
  ...over,
});

describe('UsageObject.charge', () => {
  it('counts a run its totals once: a repeated or late smaller charge adds nothing, the release only the rest', async () => {
    const usage = counterOf(`test:${crypto.randomUUID()}`);
    await usage.admit({ runId: 'a', leaseUntil: NOON + 3600_000, maxRunning: 0, tokensPerDay: 0, rowsPerDay: 0, now: NOON });
    expect(await usage.charge(chargeReq('a', { rows: 10, tokens: 4 }))).toEqual({ ok: true });
    await usage.charge(chargeReq('a', { rows: 10, tokens: 4 })); // a retry
    expect(await usage.snapshot(NOON)).toMatchObject({ rows: 10, tokens: 4 });
    await usage.charge(chargeReq('a', { rows: 25, tokens: 4 }));
    await usage.charge(chargeReq('a', { rows: 20, tokens: 3 })); // an older one, arriving late
    expect(await usage.snapshot(NOON)).toMatchObject({ rows: 25, tokens: 4 });
    await usage.release({ runId: 'a', rows: 40, tokens: 9, now: NOON });
    expect(await usage.snapshot(NOON)).toEqual({ running: 0, rows: 40, tokens: 9 });
    await usage.release({ runId: 'a', rows: 40, tokens: 9, now: NOON });
    await usage.charge(chargeReq('a', { rows: 35 })); // a charge still in flight when the run ended
    expect(await usage.snapshot(NOON)).toEqual({ running: 0, rows: 40, tokens: 9 });
    // A total lower than what was charged refunds nothing.
    await usage.charge(chargeReq('b', { rows: 30 }));
    await usage.release({ runId: 'b', rows: 12, tokens: 0, now: NOON });
    expect(await usage.snapshot(NOON)).toMatchObject({ rows: 70 });
  });

  it('answers quota_exceeded once today is at the budget, with the seconds to midnight', async () => {
    const usage = counterOf(`test:${crypto.randomUUID()}`);
    expect(await usage.charge(chargeReq('a', { rows: 49, rowsPerDay: 50 }))).toEqual({ ok: true });
    const over = await usage.charge(chargeReq('a', { rows: 50, rowsPerDay: 50 }));
    expect(over).toMatchObject({ ok: false, code: 'quota_exceeded', retryAfterS: 12 * 3600 });
    expect((over as { message: string }).message).toBe(
      'this client has used its daily event storage budget; retry after midnight UTC, in 43200 s',
    );
    expect(await usage.charge(chargeReq('b', { tokens: 7, tokensPerDay: 5, scope: 'deployment' }))).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^this service has used its daily model token budget for anonymous use/),
    });
  });

  it('keeps what a run was charged past its lease, so a release after the deadline adds only the rest', async () => {
    const usage = counterOf(`test:${crypto.randomUUID()}`);
    await usage.admit({ runId: 'a', leaseUntil: NOON + 1000, maxRunning: 0, tokensPerDay: 0, rowsPerDay: 0, now: NOON });
    await usage.charge(chargeReq('a', { rows: 500 }));
    await usage.release({ runId: 'a', rows: 510, tokens: 0, now: NOON + 5000 });
    expect(await usage.snapshot(NOON + 5000)).toMatchObject({ rows: 510 });
  });
});

describe('chargeRun', () => {
  /** USAGE with names prefixed (a deployment counter of its own); the first call of each counter applies, then fails as retryable. */
  function flakyEnv() {
    const prefix = `test:${crypto.randomUUID()}/`;
    const calls = new Map<string, number>();
    const USAGE = {
      idFromName: (name: string) => ({ name }),
      get: ({ name }: { name: string }) => {
        const real = env.USAGE.get(env.USAGE.idFromName(prefix + name));
        return {
          charge: async (req: ChargeRequest) => {
            const answer = await real.charge(req);
            const n = (calls.get(name) ?? 0) + 1;
            calls.set(name, n);
            if (n === 1) throw Object.assign(new Error('connection reset'), { retryable: true }); // applied, answer lost
            return answer;
          },
          release: (req: Parameters<typeof real.release>[0]) => real.release(req),
        };
      },
    };
    return { env: { ...env, USAGE } as unknown as AppEnv, counter: (name: string) => counterOf(prefix + name), calls };
  }

  it('retries a charge whose answer was lost without counting it twice, and the release adds the rest', async () => {
    const t = flakyEnv();
    const limits = { ...LIMITS, clientRowsPerDay: 1000 };
    expect(await chargeRun(t.env, limits, 'c', 'run-1', { tokens: 0, rows: 300 })).toEqual({ ok: true });
    expect(t.calls.get(clientCounter('c'))).toBe(2);
    expect((await t.counter(clientCounter('c')).snapshot()).rows).toBe(300);
    expect((await t.counter(DEPLOYMENT_COUNTER).snapshot()).rows).toBe(300);
    await releaseRun(t.env, 'c', 'run-1', { tokens: 0, rows: 320 });
    expect((await t.counter(clientCounter('c')).snapshot()).rows).toBe(320);
    expect((await t.counter(DEPLOYMENT_COUNTER).snapshot()).rows).toBe(320);
  });

  it('answers the refusal of either counter, the client first, and null (go on) when a counter fails for good', async () => {
    const prefix = `test:${crypto.randomUUID()}/`;
    const failing = { charge: () => Promise.reject(new Error('secret detail')) };
    const usageEnv = (broken: string[]) =>
      ({
        ...env,
        USAGE: {
          idFromName: (name: string) => ({ name }),
          get: ({ name }: { name: string }) => (broken.includes(name) ? failing : env.USAGE.get(env.USAGE.idFromName(prefix + name))),
        },
      }) as unknown as AppEnv;
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const limits = { ...LIMITS, clientRowsPerDay: 100, deploymentRowsPerDay: 50 };
    expect(await chargeRun(usageEnv([]), limits, 'c', 'run-1', { tokens: 0, rows: 60 })).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^this service has/),
    });
    expect(await chargeRun(usageEnv([]), limits, 'c', 'run-1', { tokens: 0, rows: 100 })).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^this client has/),
    });
    expect(
      await chargeRun(usageEnv([DEPLOYMENT_COUNTER]), { ...LIMITS, clientRowsPerDay: 1000 }, 'd', 'run-2', { tokens: 0, rows: 5 }),
    ).toBeNull();
    expect(error.mock.calls.map((c) => String(c[0]))).toEqual(['usage charge failed: Error']);
    // The client's counter took the charge all the same.
    expect((await counterOf(`${prefix}${clientCounter('d')}`).snapshot()).rows).toBe(5);
  });
});
