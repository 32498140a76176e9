/**
 * Runtime configuration from `[vars]` and secrets, validated once per
 * isolate per env object (env is stable within an isolate).
 */
import * as z from 'zod/mini';
import type { AppEnv } from './env';
import { parseProfiles, type Profile } from './profiles/profile';

const intVar = (def: number, min: number, max: number) =>
  z.pipe(
    z.optional(z.string()),
    z.transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.issues.push({ code: 'custom', message: `must be an integer in ${min}..${max}`, input: v });
        return z.NEVER;
      }
      return n;
    }),
  );

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const listVar = z.pipe(z.optional(z.string()), z.transform(list));

/** Origins as a browser sends them: "https://a.example/" in the config still matches "https://a.example". */
const originsVar = z.pipe(
  z.optional(z.string()),
  z.transform((v) => list(v).map((o) => o.replace(/\/+$/, ''))),
);

const ConfigSchema = z.object({
  API_KEYS: listVar,
  ALLOWED_ORIGINS: originsVar,
  HEARTBEAT_MS: intVar(15_000, 100, 3_600_000),
  RETRY_MS: intVar(1_000, 0, 3_600_000),
  MAX_RUN_SECONDS: intVar(3_600, 1, 7 * 86_400),
  RUN_TTL_SECONDS: intVar(86_400, 1, 365 * 86_400),
  // Limits for anonymous callers (README, "Deploying in public"); 0 turns a budget off.
  LIMIT_RUNNING_PER_CLIENT: intVar(10, 0, 1_000_000),
  LIMIT_READERS_PER_RUN: intVar(32, 1, 1_000_000),
  READER_MAX_AGE_SECONDS: intVar(600, 10, 7 * 86_400),
  BUDGET_CLIENT_TOKENS_PER_DAY: intVar(100_000, 0, 1e12),
  BUDGET_CLIENT_ROWS_PER_DAY: intVar(20_000, 0, 1e12),
  BUDGET_DEPLOYMENT_TOKENS_PER_DAY: intVar(2_000_000, 0, 1e12),
  BUDGET_DEPLOYMENT_ROWS_PER_DAY: intVar(1_000_000, 0, 1e12),
  TOKEN_SECRET: z.optional(z.string()),
  TICKET_SECRET: z.optional(z.string()),
  TURNSTILE_SECRET_KEY: z.optional(z.string()),
  TURNSTILE_SITE_KEY: z.optional(z.string()),
  TURNSTILE_VERIFY_URL: z._default(z.string(), 'https://challenges.cloudflare.com/turnstile/v0/siteverify'),
});

/** Secrets shorter than this are refused: an HMAC key should not be guessable. */
const MIN_SECRET_CHARS = 32;

export type Config = z.infer<typeof ConfigSchema> & { profiles: Profile[] };

/** A deployment mistake. Its message names variables and rules, never values (they may be secrets). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const cache = new WeakMap<object, Config>();

/**
 * Parse the configuration. A bad value is a deployment mistake: it throws
 * with the variable's name so `app.onError` reports a clean 500 and the log
 * says what to fix.
 */
export function getConfig(env: AppEnv): Config {
  let config = cache.get(env);
  if (!config) {
    const parsed = ConfigSchema.safeParse(env);
    const issues = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    const raw = (env as { PROFILES?: unknown }).PROFILES;
    // wrangler passes a JSON `[vars]` table as an object, a string var as a string.
    const profilesText = raw === undefined || typeof raw === 'string' ? raw : JSON.stringify(raw);
    const { profiles, issues: profileIssues } = parseProfiles(profilesText, parsed.success ? parsed.data.MAX_RUN_SECONDS : 7 * 86_400);
    issues.push(...profileIssues);
    for (const name of ['TOKEN_SECRET', 'TICKET_SECRET'] as const) {
      const value = parsed.success ? parsed.data[name] : undefined;
      if (value !== undefined && value.length < MIN_SECRET_CHARS) issues.push(`${name}: must be at least ${MIN_SECRET_CHARS} characters`);
    }
    if (parsed.success) {
      const { TICKET_SECRET: ticket, TURNSTILE_SECRET_KEY: turnstile } = parsed.data;
      for (const p of profiles) {
        const missing =
          p.humanCheck === 'ticket' && !ticket
            ? 'TICKET_SECRET'
            : p.humanCheck === 'turnstile' && !turnstile
              ? 'TURNSTILE_SECRET_KEY'
              : p.humanCheck === 'either' && !ticket && !turnstile
                ? 'TICKET_SECRET or TURNSTILE_SECRET_KEY'
                : null;
        if (missing) issues.push(`PROFILES.${p.name}.humanCheck: needs ${missing} to be set`);
      }
    }
    if (!parsed.success || issues.length) throw new ConfigError(`invalid configuration: ${issues.join('; ')}`);
    config = { ...parsed.data, profiles };
    cache.set(env, config);
  }
  return config;
}
