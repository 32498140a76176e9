// The Worker -> RunObject boundary: retries of calls workerd says may
// succeed again, never of an overloaded object, bounded, with jitter; a
// retried start is idempotent; creating needs an explicit yes.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { DO_ATTEMPTS, DO_RETRY_BASE_MS, isRetryable, retryDelayMs, withRetry } from '../../src/lib/retry';
import type { Caller, StartInput, StartRequest } from '../../src/run/protocol';
import { runStub } from '../../src/run/run-stub';
import { newRequestId, newToken } from '../../src/run/token';
import type { AppEnv } from '../../src/env';
import { readAll } from './helpers';

/** An error shaped like the ones workerd throws from a Durable Object call. */
function doError(
  fields: { retryable?: boolean; overloaded?: boolean; remote?: boolean },
  message = 'Durable Object reset because its code was updated.',
) {
  return Object.assign(new Error(message), fields);
}

/** A call failing with `errors` in turn, then answering `value`; counts its calls. */
function flaky<T>(errors: unknown[], value: T) {
  const calls: number[] = [];
  const call = async (attempt: number) => {
    calls.push(attempt);
    const err = errors[calls.length - 1];
    if (err !== undefined) throw err;
    return value;
  };
  return { call, calls };
}

const noWait = { wait: async () => {}, random: () => 0.5 };

describe('withRetry', () => {
  it('retries an error workerd marks retryable and answers what the next attempt returns', async () => {
    const { call, calls } = flaky([doError({ retryable: true })], 'ok');
    expect(await withRetry(call, noWait)).toBe('ok');
    expect(calls).toEqual([0, 1]);
  });

  it('never retries an overloaded object, even when the error is also retryable', async () => {
    const overloaded = doError({ retryable: true, overloaded: true }, 'Durable Object is overloaded.');
    const { call, calls } = flaky([overloaded], 'ok');
    await expect(withRetry(call, noWait)).rejects.toBe(overloaded);
    expect(calls).toEqual([0]);
  });

  it('does not retry an error without retryable (one the object itself threw, say)', async () => {
    for (const err of [doError({ remote: true }), doError({ retryable: false }), new TypeError('bug'), 'a string']) {
      const { call, calls } = flaky([err], 'ok');
      await expect(withRetry(call, noWait)).rejects.toBe(err);
      expect(calls).toEqual([0]);
    }
  });

  it(`gives up after ${DO_ATTEMPTS} attempts and throws the last error`, async () => {
    const errors = Array.from({ length: DO_ATTEMPTS + 2 }, (_, i) => doError({ retryable: true }, `reset ${i}`));
    const { call, calls } = flaky(errors, 'ok');
    await expect(withRetry(call, noWait)).rejects.toBe(errors[DO_ATTEMPTS - 1]);
    expect(calls).toHaveLength(DO_ATTEMPTS);
  });

  it('waits a jittered, growing, capped time between attempts', async () => {
    const waits: number[] = [];
    const randoms = [0.5, 0.999];
    const { call } = flaky([doError({ retryable: true }), doError({ retryable: true })], 'ok');
    await withRetry(call, { wait: async (ms) => void waits.push(ms), random: () => randoms.shift()! });
    expect(waits).toEqual([Math.floor(0.5 * DO_RETRY_BASE_MS), Math.floor(0.999 * 2 * DO_RETRY_BASE_MS)]);
    // Full jitter: anywhere from 0 to the cap, never past it.
    expect(retryDelayMs(1, 50, 500, () => 0)).toBe(0);
    expect(retryDelayMs(10, 50, 500, () => 0.999)).toBe(499);
  });

  it('tells retryable errors apart by their fields only', () => {
    expect(isRetryable(doError({ retryable: true }))).toBe(true);
    expect(isRetryable({ retryable: true })).toBe(true);
    expect(isRetryable({ retryable: 'yes' })).toBe(false);
    expect(isRetryable(null)).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });
});

/**
 * env with RUNS wrapped: `fail(method, attempt)` may throw a retryable
 * error before the real call ("before"), or after it, the answer lost
 * ("after"). Every attempt gets a fresh stub, as the boundary asks.
 */
function envWithFailures(plan: (method: string, attempt: number) => 'before' | 'after' | null): { env: AppEnv; attempts: string[] } {
  const attempts: string[] = [];
  const counts = new Map<string, number>();
  const RUNS = {
    idFromName: (name: string) => env.RUNS.idFromName(name),
    get: (id: DurableObjectId) => {
      const real = env.RUNS.get(id) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      return new Proxy(
        {},
        {
          get:
            (_t, method: string) =>
            async (...args: unknown[]) => {
              const attempt = counts.get(method) ?? 0;
              counts.set(method, attempt + 1);
              attempts.push(method);
              const when = plan(method, attempt);
              if (when === 'before') throw doError({ retryable: true }, 'Network connection lost.');
              const answer = await real[method]!(...args);
              if (when === 'after') throw doError({ retryable: true }, 'Network connection lost.');
              return answer;
            },
        },
      );
    },
  };
  return { env: { ...env, RUNS } as unknown as AppEnv, attempts };
}

async function startRequest(mayCreate: boolean): Promise<StartRequest> {
  const requestId = newRequestId();
  const input: StartInput = { requestId, profile: 'demo', agent: 'demo', query: 'q', messages: [], options: { tokens: 3, delayMs: 0 } };
  return { input, checks: { newToken: await newToken(requestId) }, mayCreate };
}

const anonymous: Caller = { apiKey: false };

describe('runStub', () => {
  it('retries a start whose answer was lost: it attaches to the run it created, with the same token', async () => {
    const { env: flakyEnv, attempts } = envWithFailures((method, attempt) => (method === 'start' && attempt === 0 ? 'after' : null));
    const request = await startRequest(true);
    const outcome = await runStub(flakyEnv, request.input.requestId).start(request, anonymous);
    expect(attempts).toEqual(['start', 'start']);
    expect(outcome).toMatchObject({ kind: 'attached', token: request.checks.newToken });
    // One run, opened by that token, with one `run` event.
    const read = await readAll(request.input.requestId, request.checks.newToken);
    expect(read.events.filter((e) => e.event === 'run')).toHaveLength(1);
    expect(read.events.at(-1)?.event).toBe('done');
  });

  it('retries a streamed start that failed before reaching the object, and streams the run', async () => {
    const { env: flakyEnv, attempts } = envWithFailures((method, attempt) => (method === 'startStream' && attempt === 0 ? 'before' : null));
    const request = await startRequest(true);
    const outcome = await runStub(flakyEnv, request.input.requestId).startStream(request, anonymous, 0);
    expect(attempts).toEqual(['startStream', 'startStream']);
    expect(outcome.kind).toBe('created');
    if (outcome.kind !== 'created' || outcome.read.kind !== 'stream') throw new Error('no stream');
    const text = await new Response(outcome.read.body).text();
    expect(text).toContain('event: done');
  });

  it('retries a read, and gives up after the bounded attempts with the last error', async () => {
    const request = await startRequest(true);
    await runStub(env, request.input.requestId).start(request, anonymous);
    const caller: Caller = { apiKey: false, token: request.checks.newToken };
    const once = envWithFailures((method, attempt) => (method === 'status' && attempt === 0 ? 'before' : null));
    expect(await runStub(once.env, request.input.requestId).status(caller)).toMatchObject({ requestId: request.input.requestId });
    expect(once.attempts).toEqual(['status', 'status']);
    const always = envWithFailures((method) => (method === 'status' ? 'before' : null));
    await expect(runStub(always.env, request.input.requestId).status(caller)).rejects.toThrow('Network connection lost.');
    expect(always.attempts).toHaveLength(DO_ATTEMPTS);
  });
});

describe('creating a run needs an explicit yes', () => {
  it('a start request without mayCreate only attaches: nothing is created', async () => {
    const request = await startRequest(true);
    const { mayCreate: _dropped, ...withoutMayCreate } = request;
    const object = env.RUNS.get(env.RUNS.idFromName(request.input.requestId));
    const outcome = await object.startStream(withoutMayCreate as StartRequest, anonymous, 0);
    expect(outcome.kind).toBe('unauthorized');
    // Not even an API key finds a run there.
    expect(await object.status({ apiKey: true })).toBeNull();
    const truthy = await object.start(request.input, anonymous, 'yes' as never, request.checks);
    expect(truthy.kind).toBe('unauthorized');
    expect(await object.status({ apiKey: true })).toBeNull();
  });
});
