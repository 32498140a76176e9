import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AppEnv } from '../../src/env';
import { resetMissingBindingWarnings } from '../../src/limits/missing-binding';
import {
  DEPLOYMENT_COUNTER,
  admitRun,
  clientCounter,
  estimateTokens,
  releaseRun,
  tokensFromUsage,
  type UsageLimits,
} from '../../src/limits/usage';

const NO_LIMITS: UsageLimits = {
  runningPerClient: 0,
  clientTokensPerDay: 0,
  clientRowsPerDay: 0,
  deploymentTokensPerDay: 0,
  deploymentRowsPerDay: 0,
};

/**
 * The test env with USAGE names prefixed, so each test has a `deployment`
 * counter of its own. `broken` names the counters whose calls fail.
 */
function isolatedEnv(broken: string[] = []) {
  const prefix = `test:${crypto.randomUUID()}/`;
  const failing = { admit: () => Promise.reject(new Error('secret detail')), release: () => Promise.reject(new Error('secret detail')) };
  const USAGE = {
    idFromName: (name: string) => ({ name }),
    get: ({ name }: { name: string }) => (broken.includes(name) ? failing : env.USAGE.get(env.USAGE.idFromName(prefix + name))),
  };
  const counter = (name: string) => env.USAGE.get(env.USAGE.idFromName(prefix + name));
  return { env: { ...env, USAGE } as unknown as AppEnv, counter };
}

const leaseUntil = () => Date.now() + 3600_000;

beforeEach(() => resetMissingBindingWarnings());
afterEach(() => vi.restoreAllMocks());

describe('admitRun and releaseRun', () => {
  it('admit at the client and the deployment counters, and release both with the usage', async () => {
    const t = isolatedEnv();
    expect(await admitRun(t.env, NO_LIMITS, '203.0.113.7', 'run-1', leaseUntil())).toEqual({ ok: true });
    expect((await t.counter(clientCounter('203.0.113.7')).snapshot()).running).toBe(1);
    expect((await t.counter(DEPLOYMENT_COUNTER).snapshot()).running).toBe(1);
    await releaseRun(t.env, '203.0.113.7', 'run-1', { tokens: 30, rows: 4 });
    expect(await t.counter(clientCounter('203.0.113.7')).snapshot()).toEqual({ running: 0, tokens: 30, rows: 4 });
    expect(await t.counter(DEPLOYMENT_COUNTER).snapshot()).toEqual({ running: 0, tokens: 30, rows: 4 });
  });

  it('limits running runs per client, not per deployment, and rolls back the deployment lease of a refused run', async () => {
    const t = isolatedEnv();
    const limits = { ...NO_LIMITS, runningPerClient: 1 };
    expect((await admitRun(t.env, limits, 'a', 'run-1', leaseUntil())).ok).toBe(true);
    expect(await admitRun(t.env, limits, 'a', 'run-2', leaseUntil())).toMatchObject({ ok: false, code: 'rate_limited' });
    expect((await admitRun(t.env, limits, 'b', 'run-3', leaseUntil())).ok).toBe(true);
    expect((await t.counter(DEPLOYMENT_COUNTER).snapshot()).running).toBe(2); // run-1 and run-3
  });

  it('rolls back the client lease when the deployment refuses, and returns the deployment refusal', async () => {
    const t = isolatedEnv();
    const limits = { ...NO_LIMITS, runningPerClient: 5, deploymentTokensPerDay: 10 };
    await admitRun(t.env, limits, 'other', 'run-0', leaseUntil());
    await releaseRun(t.env, 'other', 'run-0', { tokens: 10, rows: 0 });
    const refused = await admitRun(t.env, limits, 'a', 'run-1', leaseUntil());
    expect(refused).toMatchObject({ ok: false, code: 'quota_exceeded' });
    expect(refused.ok || refused.message).toMatch(/^this service has used its daily model token budget for anonymous use/);
    expect(await t.counter(clientCounter('a')).snapshot()).toEqual({ running: 0, tokens: 0, rows: 0 });
  });

  it("returns the client's refusal when both refuse", async () => {
    const t = isolatedEnv();
    const limits = { ...NO_LIMITS, clientTokensPerDay: 5, deploymentTokensPerDay: 5 };
    await releaseRun(t.env, 'a', 'run-0', { tokens: 5, rows: 0 });
    const refused = await admitRun(t.env, limits, 'a', 'run-1', leaseUntil());
    expect(refused.ok || refused.message).toMatch(/^this client has used its daily model token budget/);
  });

  it('admits a run refused once and then retried, counting it when it is released', async () => {
    const t = isolatedEnv();
    const limits = { ...NO_LIMITS, runningPerClient: 1 };
    await admitRun(t.env, limits, 'a', 'run-1', leaseUntil());
    expect((await admitRun(t.env, limits, 'a', 'run-2', leaseUntil())).ok).toBe(false);
    await releaseRun(t.env, 'a', 'run-1', { tokens: 1, rows: 1 });
    expect((await admitRun(t.env, limits, 'a', 'run-2', leaseUntil())).ok).toBe(true);
    await releaseRun(t.env, 'a', 'run-2', { tokens: 2, rows: 2 });
    expect(await t.counter(DEPLOYMENT_COUNTER).snapshot()).toEqual({ running: 0, tokens: 3, rows: 3 });
  });

  it('throws when a counter fails, after releasing the lease the other one gave', async () => {
    const t = isolatedEnv([DEPLOYMENT_COUNTER]);
    await expect(admitRun(t.env, NO_LIMITS, 'a', 'run-1', leaseUntil())).rejects.toThrow();
    expect((await t.counter(clientCounter('a')).snapshot()).running).toBe(0);
  });

  it('prefers a refusal to a failure of the other counter', async () => {
    const t = isolatedEnv([DEPLOYMENT_COUNTER]);
    vi.spyOn(console, 'error').mockImplementation(() => {}); // the broken deployment's release
    await releaseRun(t.env, 'a', 'run-0', { tokens: 5, rows: 0 });
    const refused = await admitRun(t.env, { ...NO_LIMITS, clientTokensPerDay: 5 }, 'a', 'run-1', leaseUntil());
    expect(refused).toMatchObject({ ok: false, code: 'quota_exceeded' });
  });

  it('releaseRun never throws, and logs only the kind of error', async () => {
    const t = isolatedEnv([clientCounter('a'), DEPLOYMENT_COUNTER]);
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    await expect(releaseRun(t.env, 'a', 'run-1', { tokens: 1, rows: 1 })).resolves.toBeUndefined();
    expect(error.mock.calls.map((c) => String(c[0]))).toEqual(['usage release failed: Error', 'usage release failed: Error']);
  });

  it('without the USAGE binding admits everything and warns once, naming the binding', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const bare = { ...env, USAGE: undefined } as unknown as AppEnv;
    const limits = { ...NO_LIMITS, runningPerClient: 1 };
    for (let i = 0; i < 3; i++) expect(await admitRun(bare, limits, 'a', `run-${i}`, leaseUntil())).toEqual({ ok: true });
    await releaseRun(bare, 'a', 'run-0', { tokens: 1, rows: 1 });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/USAGE.*NOT limiting running runs per client/);
  });
});

describe('estimateTokens', () => {
  it('counts about 4 characters a token, rounded up', () => {
    expect(estimateTokens(0)).toBe(0);
    expect(estimateTokens(1)).toBe(1);
    expect(estimateTokens(4)).toBe(1);
    expect(estimateTokens(5)).toBe(2);
    expect(estimateTokens(16_000)).toBe(4_000);
    expect(estimateTokens(-3)).toBe(0);
  });
});

describe('tokensFromUsage', () => {
  it.each([
    ['OpenAI total_tokens', { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }, 15],
    ['OpenAI without total', { prompt_tokens: 10, completion_tokens: 5 }, 15],
    [
      'OpenAI with details',
      { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, completion_tokens_details: { reasoning_tokens: 2 } },
      7,
    ],
    ['Workers AI', { prompt_tokens: 21, completion_tokens: 100, total_tokens: 121 }, 121],
    ['Anthropic', { input_tokens: 12, output_tokens: 30 }, 42],
    ['Anthropic, output only (a stream delta)', { output_tokens: 30 }, 30],
    ['only completion tokens', { completion_tokens: 8 }, 8],
    ['zero', { total_tokens: 0 }, 0],
  ])('reads %s', (_name, usage, tokens) => expect(tokensFromUsage(usage)).toBe(tokens));

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', '15'],
    ['an empty object', {}],
    ['unknown fields', { tokens: 5 }],
    ['non-numeric counts', { prompt_tokens: '10', completion_tokens: '5' }],
    ['negative and infinite counts', { total_tokens: -1, input_tokens: Number.POSITIVE_INFINITY }],
  ])('is null for %s', (_name, usage) => expect(tokensFromUsage(usage)).toBeNull());

  it('falls back from a bad total to the parts', () => {
    expect(tokensFromUsage({ total_tokens: 'x', prompt_tokens: 2, completion_tokens: 3 })).toBe(5);
  });
});
