/**
 * Admitting and releasing anonymous runs against the usage counters: the
 * client's own object (`client:<key>`) and the one of the whole deployment
 * (`deployment`). Plus the token arithmetic the callers need to report usage.
 */
import type { AppEnv } from '../env';
import { withRetry } from '../lib/retry';
import { warnMissingBinding } from './missing-binding';
import type { Admission, ChargeRequest, ReleaseRequest, UsageObject } from './usage-object';

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

/** What a run used, in all: so far (a charge) or when it ends (its release). */
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
  await Promise.all([
    admitted(mine) ? releaseAt(ns, clientCounter(clientKey), none) : undefined,
    admitted(all) ? releaseAt(ns, DEPLOYMENT_COUNTER, none) : undefined,
  ]);
  for (const r of [mine, all]) if (r.status === 'fulfilled' && !r.value.ok) return r.value;
  throw mine.status === 'rejected' ? mine.reason : (all as PromiseRejectedResult).reason;
}

/**
 * A run admitted by `admitRun` ended: free its slot and count its usage, at
 * both counters; `usage` is the run's total, and only what its charges have
 * not counted is added. Never throws (a failure is logged by kind): the run
 * is over either way, and its lease frees itself at `leaseUntil`.
 */
export async function releaseRun(env: AppEnv, clientKey: string, runId: string, usage: RunUsage): Promise<void> {
  const ns = usageNamespace(env);
  if (!ns) return;
  const req = { runId, tokens: usage.tokens, rows: usage.rows };
  await Promise.all([releaseAt(ns, clientCounter(clientKey), req), releaseAt(ns, DEPLOYMENT_COUNTER, req)]);
}

/**
 * Rows between two charges of a running run: 1/40 of the smallest row
 * budget that applies, at most CHARGE_EVERY_ROWS, at least 1. With the
 * default budgets (20,000 a client) that is 500.
 */
export const CHARGE_EVERY_ROWS = 500;
/** Tokens between two charges, likewise: 1/40 of the smallest token budget, at most this (2,500 with the defaults). */
export const CHARGE_EVERY_TOKENS = 2_500;
/** A budget is charged this many times over before a run that keeps writing could have used it alone. */
const CHARGES_PER_BUDGET = 40;

/**
 * How much a run may use between two charges under `limits`: null when no
 * budget applies at all (then nothing is charged before the end).
 */
export function chargeInterval(limits: UsageLimits): { rows: number; tokens: number } | null {
  const rows = smallest(limits.clientRowsPerDay, limits.deploymentRowsPerDay);
  const tokens = smallest(limits.clientTokensPerDay, limits.deploymentTokensPerDay);
  if (rows === null && tokens === null) return null;
  const every = (budget: number | null, max: number) =>
    budget === null ? Infinity : Math.max(1, Math.min(max, Math.floor(budget / CHARGES_PER_BUDGET)));
  return { rows: every(rows, CHARGE_EVERY_ROWS), tokens: every(tokens, CHARGE_EVERY_TOKENS) };
}

/**
 * Charge a running run's usage so far (its totals) at both counters, in
 * parallel, and say whether it may go on: a refusal (`quota_exceeded`, the
 * client's first) when a budget is now used up. Each counter adds only what
 * it has not counted for this run, so a retried charge adds nothing twice;
 * passing failures of a counter are retried (withRetry). Never throws: a
 * counter that still fails is logged by kind and does not stop the run (its
 * next charge, or the release, counts what this one missed); null then.
 */
export async function chargeRun(
  env: AppEnv,
  limits: UsageLimits,
  clientKey: string,
  runId: string,
  usage: RunUsage,
): Promise<Admission | null> {
  const ns = usageNamespace(env);
  if (!ns) return { ok: true };
  const req = { runId, tokens: usage.tokens, rows: usage.rows };
  const answers = await Promise.all([
    chargeAt(ns, clientCounter(clientKey), {
      ...req,
      tokensPerDay: limits.clientTokensPerDay,
      rowsPerDay: limits.clientRowsPerDay,
      scope: 'client',
    }),
    chargeAt(ns, DEPLOYMENT_COUNTER, {
      ...req,
      tokensPerDay: limits.deploymentTokensPerDay,
      rowsPerDay: limits.deploymentRowsPerDay,
      scope: 'deployment',
    }),
  ]);
  return answers.find((a) => a !== null && !a.ok) ?? (answers.includes(null) ? null : { ok: true });
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

async function releaseAt(ns: DurableObjectNamespace<UsageObject>, name: string, req: ReleaseRequest): Promise<void> {
  try {
    // Idempotent per run (a repeated release adds nothing): safe to retry, with a fresh stub each time.
    await withRetry(() => counter(ns, name).release(req));
  } catch (err) {
    // The kind only: a message could carry the run id or the client's key.
    console.error(`usage release failed: ${(err as Error)?.name ?? typeof err}`);
  }
}

async function chargeAt(ns: DurableObjectNamespace<UsageObject>, name: string, req: ChargeRequest): Promise<Admission | null> {
  try {
    // Totals, not increments: a retry adds nothing twice.
    return await withRetry(async (): Promise<Admission> => await counter(ns, name).charge(req));
  } catch (err) {
    console.error(`usage charge failed: ${(err as Error)?.name ?? typeof err}`);
    return null;
  }
}

/** The smallest budget that applies (> 0), or null when none does. */
function smallest(...budgets: number[]): number | null {
  const on = budgets.filter((b) => b > 0);
  return on.length > 0 ? Math.min(...on) : null;
}

/** A count of tokens: a finite number >= 0, rounded; anything else is not one. */
function tokenCount(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : null;
}

/** Either part alone counts (a report may carry only one side); neither is null. */
function sumOf(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}
