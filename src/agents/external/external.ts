/**
 * `external`: a run with no agent inside. A backend holding an API key
 * creates the run (`POST /v1/runs` with an external profile) and appends its
 * events over HTTP (`POST /v1/runs/{id}/events`, idempotent per producer);
 * the run stores, numbers and serves them like any agent's. A profile
 * exposes it with `{"agent": "external", "leaseSeconds": 60}`.
 *
 * The agent itself yields nothing and waits until the run ends (a `done`
 * appended, cancel, deadline, a lapsed lease), so the run object treats an
 * external run like any other. It is `deterministic` because it yields
 * nothing whatever happens: after a runtime restart the run simply goes on
 * waiting for appends, its log and producers' state intact in storage.
 */
import * as z from 'zod/mini';
import type { AppEnv } from '../../env';
import type { Agent } from '../types';

export const EXTERNAL_AGENT = 'external';

/** Default lease: a producer quiet for a minute is presumed gone. */
export const DEFAULT_LEASE_SECONDS = 60;
/**
 * Lease bounds. Below 5 s a producer's ordinary pauses (a slow tool call, a
 * retry with backoff) would end runs, and the alarm would fire every second;
 * an hour is the default run deadline (`MAX_RUN_SECONDS`).
 */
export const MIN_LEASE_SECONDS = 5;
export const MAX_LEASE_SECONDS = 3_600;

/** No options: whoever starts the run sends its events itself. */
export const ExternalOptions = z.strictObject({});
export type ExternalOptions = z.infer<typeof ExternalOptions>;

/** The deployer's profile keys. */
export const ExternalSettings = z.strictObject({
  /** A run with no append (from any producer) for this long fails with `producer_timeout`. */
  leaseSeconds: z._default(z.int().check(z.gte(MIN_LEASE_SECONDS), z.lte(MAX_LEASE_SECONDS)), DEFAULT_LEASE_SECONDS),
});
export type ExternalSettings = z.infer<typeof ExternalSettings>;

/** True when the run's (or the profile's) events come from producers over HTTP rather than an agent. */
export function isExternalRun(input: { agent: string }): boolean {
  return input.agent === EXTERNAL_AGENT;
}

/** The run's lease in milliseconds, from the settings its profile gave it. */
export function leaseMs(input: { settings?: Record<string, unknown> }): number {
  const seconds = (input.settings as Partial<ExternalSettings> | undefined)?.leaseSeconds;
  return (typeof seconds === 'number' ? seconds : DEFAULT_LEASE_SECONDS) * 1000;
}

/** True when `API_KEYS` names at least one key: only an API-key caller creates and feeds external runs. */
function hasApiKeys(env: AppEnv): boolean {
  return (env.API_KEYS ?? '').split(',').some((key) => key.trim() !== '');
}

export const externalAgent: Agent<ExternalOptions, ExternalSettings> = {
  name: EXTERNAL_AGENT,
  description: 'Events appended over HTTP by a backend holding an API key',
  options: ExternalOptions,
  settings: ExternalSettings as z.ZodMiniType<ExternalSettings>,
  deterministic: true,
  notConfigured: (env) => (hasApiKeys(env) ? null : 'set API_KEYS: only an API-key caller can create and append to external runs'),
  async *run(_input, signal) {
    // Nothing to produce: the run ends by an appended `done`, cancel, deadline or lease, each of which aborts this.
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  },
};
