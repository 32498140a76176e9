/**
 * Admitting and releasing anonymous runs against the usage counters: the
 * client's own object (`client:<key>`) and the one of the whole deployment
 * (`deployment`). Plus the token arithmetic the callers need to report usage.
 */
import type { AppEnv } from '../env';
import { warnMissingBinding } from './missing-binding';
import type { Admission, UsageObject } from './usage-object';

export type { Admission } from './usage-object';

/** The deployment's limits for anonymous clients; 0 = no limit, for each. */
export interface UsageLimits {
  /** Runs of one client going at once (LIMIT_RUNNING_PER_CLIENT). */
  runningPerClient: number;
  /** Model tokens per client per UTC day (BUDGET_CLIENT_TOKENS_PER_DAY). */
  clientTokensPerDay: number;
  /** Log rows per client per UTC day (BUDGET_CLIENT_ROWS_PER_DAY). */
  clientRowsPerDay: number;
  /** Model tokens of all anonymous clients together per UTC day (BUDGET_DEPLOYMENT_TOKENS_PER_DAY). */
  deploymentTokensPerDay: number;
  /** Log rows of all anonymous clients together per UTC day (BUDGET_DEPLOYMENT_ROWS_PER_DAY). */
  deploymentRowsPerDay: number;
}

/** What a run used, reported when it ends. */
export interface RunUsage {
  tokens: number;
  rows: number;
}

/** The name of the object counting for every anonymous client together. */
export const DEPLOYMENT_COUNTER = 'deployment';

/** The name of the object counting for one client. */
export function clientCounter(clientKey: string): string {
  return `client:${clientKey}`;
}

/**
 * Admit a run of an anonymous client: at its own counter (running runs and
 * its budgets) and at the deployment's (budgets only), in parallel. If
 * either refuses, the other's lease is released (with no usage) and the
 * refusal is returned, the client's first. If a counter fails, the other's
 * lease is released and the error is thrown: a start that cannot be counted
 * is refused (the route answers 500, retryable) rather than let through
 * unmetered.
 *
 * Without the USAGE binding every run is admitted (and the log says so, once).
 *
 * @param clientKey the client's key (`clientKey()` or `user:<id>`)
 * @param runId the run's requestId
 * @param leaseUntil epoch ms: the run's deadline, when its slot frees itself
 */
export async function admitRun(env: AppEnv, limits: UsageLimits, clientKey: string, runId: string, leaseUntil: number): Promise<Admission> {
  const ns = usageNamespace(env);
  if (!ns) return { ok: true };
  const client = counter(ns, clientCounter(clientKey));
  const deployment = counter(ns, DEPLOYMENT_COUNTER);
  const [mine, all] = await Promise.allSettled([
    client.admit({
      runId,
      leaseUntil,
      maxRunning: limits.runningPerClient,
      tokensPerDay: limits.clientTokensPerDay,
      rowsPerDay: limits.clientRowsPerDay,
      scope: 'client',
    }),
    deployment.admit({
      runId,
      leaseUntil,
      maxRunning: 0,
      tokensPerDay: limits.deploymentTokensPerDay,
      rowsPerDay: limits.deploymentRowsPerDay,
      scope: 'deployment',
    }),
  ]);
  const admitted = (r: PromiseSettledResult<Admission>) => r.status === 'fulfilled' && r.value.ok;
  if (admitted(mine) && admitted(all)) return { ok: true };
  const none = { runId, tokens: 0, rows: 0 };
  await Promise.all([admitted(mine) ? releaseAt(client, none) : undefined, admitted(all) ? releaseAt(deployment, none) : undefined]);
  for (const r of [mine, all]) if (r.status === 'fulfilled' && !r.value.ok) return r.value;
  throw mine.status === 'rejected' ? mine.reason : (all as PromiseRejectedResult).reason;
}

/**
 * A run admitted by `admitRun` ended: free its slot and count its usage, at
 * both counters. Never throws (a failure is logged by kind): the run is over
 * either way, and its lease frees itself at `leaseUntil`.
 */
export async function releaseRun(env: AppEnv, clientKey: string, runId: string, usage: RunUsage): Promise<void> {
  const ns = usageNamespace(env);
  if (!ns) return;
  const req = { runId, tokens: usage.tokens, rows: usage.rows };
  await Promise.all([releaseAt(counter(ns, clientCounter(clientKey)), req), releaseAt(counter(ns, DEPLOYMENT_COUNTER), req)]);
}

/**
 * Tokens in `chars` characters of text, for when a model reports no usage:
 * about 4 characters a token is the usual rough rate for English text with
 * GPT-style (BPE) tokenizers. Rounded up, so any text costs at least one.
 */
export function estimateTokens(chars: number): number {
  return chars > 0 ? Math.ceil(chars / 4) : 0;
}

/**
 * The total tokens in a model's usage report, or null when it holds none.
 * Reads OpenAI Chat Completions and Workers AI (`total_tokens`, else
 * `prompt_tokens` + `completion_tokens`) and Anthropic-style reports
 * (`input_tokens` + `output_tokens`).
 */
export function tokensFromUsage(usage: unknown): number | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const total = tokenCount(u.total_tokens);
  if (total !== null) return total;
  return (
    sumOf(tokenCount(u.prompt_tokens), tokenCount(u.completion_tokens)) ?? sumOf(tokenCount(u.input_tokens), tokenCount(u.output_tokens))
  );
}

// ---- helpers --------------------------------------------------------------

type UsageStub = DurableObjectStub<UsageObject>;

function usageNamespace(env: AppEnv): DurableObjectNamespace<UsageObject> | null {
  const ns = (env as { USAGE?: DurableObjectNamespace<UsageObject> }).USAGE;
  if (ns) return ns;
  warnMissingBinding('USAGE', 'running runs per client or the daily token and row budgets');
  return null;
}

function counter(ns: DurableObjectNamespace<UsageObject>, name: string): UsageStub {
  return ns.get(ns.idFromName(name));
}

async function releaseAt(stub: UsageStub, req: { runId: string; tokens: number; rows: number }): Promise<void> {
  try {
    await stub.release(req);
  } catch (err) {
    // The kind only: a message could carry the run id or the client's key.
    console.error(`usage release failed: ${(err as Error)?.name ?? typeof err}`);
  }
}

/** A count of tokens: a finite number >= 0, rounded; anything else is not one. */
function tokenCount(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : null;
}

/** Either part alone counts (a report may carry only one side); neither is null. */
function sumOf(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}
