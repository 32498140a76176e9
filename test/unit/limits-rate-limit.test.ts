import { env } from 'cloudflare:workers';
import type { Context } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AppEnv } from '../../src/env';
import { ApiError } from '../../src/errors';
import { resetMissingBindingWarnings } from '../../src/limits/missing-binding';
import { AUTH_PERIOD_S, START_PERIOD_S, limitFailedAuth, limitStarts } from '../../src/limits/rate-limit';

/** Each test limits keys of its own: the simulated limiter keeps counting across tests. */
const freshKey = () => `test:${crypto.randomUUID()}`;
const contextWith = (bindings: Partial<AppEnv>) => ({ env: bindings }) as unknown as Context<{ Bindings: AppEnv }>;

beforeEach(() => resetMissingBindingWarnings());
afterEach(() => vi.restoreAllMocks());

describe('limitFailedAuth', () => {
  it('returns the seconds to retry after once one key has failed 20 times in a period, not for another key', async () => {
    const key = freshKey();
    for (let i = 0; i < 20; i++) expect(await limitFailedAuth(env, key)).toBeNull();
    expect(await limitFailedAuth(env, key)).toBe(AUTH_PERIOD_S);
    expect(AUTH_PERIOD_S).toBe(60);
    expect(await limitFailedAuth(env, freshKey())).toBeNull();
  });

  it('does not limit a caller without a key (loopback)', async () => {
    for (let i = 0; i < 25; i++) expect(await limitFailedAuth(env, null)).toBeNull();
  });

  it('warns once per isolate, naming the binding, when AUTH_LIMITER is missing, and does not limit', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const bare = { ...env, AUTH_LIMITER: undefined } as unknown as AppEnv;
    for (let i = 0; i < 25; i++) expect(await limitFailedAuth(bare, 'k')).toBeNull();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/AUTH_LIMITER.*NOT limiting failed authentications/);
  });

  it('does not limit when the limiter itself fails, and logs only the kind of error', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const broken = { ...env, AUTH_LIMITER: { limit: () => Promise.reject(new TypeError('secret detail')) } };
    expect(await limitFailedAuth(broken as AppEnv, 'k')).toBeNull();
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]?.[0])).toMatch(/AUTH_LIMITER failed \(TypeError\)/);
    expect(String(error.mock.calls[0]?.[0])).not.toContain('secret detail');
  });
});

describe('limitStarts', () => {
  it('throws 429 rate_limited with Retry-After after 30 starts by one key, not for another key', async () => {
    const c = contextWith(env);
    const key = freshKey();
    for (let i = 0; i < 30; i++) await limitStarts(c, key);
    const err = await limitStarts(c, key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('rate_limited');
    expect((err as ApiError).headers).toEqual({ 'Retry-After': String(START_PERIOD_S) });
    expect(START_PERIOD_S).toBe(10);
    await limitStarts(c, freshKey());
  });

  it('does not limit a null key (loopback, API-key callers)', async () => {
    const c = contextWith(env);
    for (let i = 0; i < 35; i++) await limitStarts(c, null);
  });

  it('warns once per isolate, naming the binding, when START_LIMITER is missing, and does not limit', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const c = contextWith({ ...env, START_LIMITER: undefined } as unknown as AppEnv);
    for (let i = 0; i < 35; i++) await limitStarts(c, 'k');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/START_LIMITER.*NOT limiting run starts/);
  });
});
