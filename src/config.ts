/**
 * Runtime configuration from `[vars]` and secrets, validated once per
 * isolate per env object (env is stable within an isolate).
 */
import * as z from 'zod/mini';
import type { AppEnv } from './env';

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
});

export type Config = z.infer<typeof ConfigSchema>;

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
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new ConfigError(`invalid configuration: ${where}`);
    }
    config = parsed.data;
    cache.set(env, config);
  }
  return config;
}
