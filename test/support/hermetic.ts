/**
 * Tests see only the configuration they declare. Left alone, wrangler (and
 * so the vitest plugin and `wrangler dev`) adds a developer's local files to
 * it, and their values override `[vars]`:
 *
 * - `.dev.vars` beside the config file (or `.dev.vars.<env>`), or without
 *   one the `.env` files there;
 * - the shell's whole environment, when CLOUDFLARE_INCLUDE_PROCESS_ENV is set;
 * - `.env` in the working directory into wrangler's own environment, at startup.
 *
 * A `.dev.vars` made as the README suggests (API_KEYS, PROFILES) failed 81
 * of 307 unit tests; TOKEN_SECRET alone 4; ALLOWED_ORIGINS alone 1.
 *
 * Durable Object state is not shared either: unit tests run with ephemeral
 * objects, and `wrangler dev` for e2e gets `--persist-to` a fresh temp dir.
 */
import { copyFileSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../..');

/** What wrangler would otherwise take from the shell: never from a developer's environment in a test. */
const WRANGLER_ENV_OVERRIDES = {
  CLOUDFLARE_INCLUDE_PROCESS_ENV: 'false',
  CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: 'false',
} as const;
/** Selects a `[env.NAME]` of wrangler.toml and `.dev.vars.NAME`: tests use the top level. */
const WRANGLER_ENV_REMOVED = ['CLOUDFLARE_ENV'] as const;

/**
 * A copy of `root`'s wrangler.toml alone in a fresh temp directory, so that
 * nothing beside it (`.dev.vars`, `.env`) can be loaded with it. `src` and
 * `static` are linked beside it, so the paths in it (`main`, the assets
 * directory) still resolve to the project's.
 * @returns the path of the copy
 */
export function hermeticWranglerConfig(root: string = ROOT): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgestream-config-'));
  copyFileSync(join(root, 'wrangler.toml'), join(dir, 'wrangler.toml'));
  // 'junction' makes directory links without extra rights on Windows; ignored elsewhere.
  for (const sub of ['src', 'static']) symlinkSync(join(root, sub), join(dir, sub), 'junction');
  return join(dir, 'wrangler.toml');
}

/** An empty env file for `wrangler dev --env-file`: given one, wrangler reads neither `.dev.vars` nor `.env`. */
export function emptyEnvFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'edgestream-env-')), 'empty.env');
  writeFileSync(file, '# tests declare their variables with --var; nothing comes from here\n');
  return file;
}

/** `base` (the shell's environment) without what would make wrangler read more configuration. */
export function hermeticWranglerEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...WRANGLER_ENV_OVERRIDES };
  for (const name of WRANGLER_ENV_REMOVED) delete env[name];
  return env;
}

/** The same, applied to this process (the vitest process, where the plugin reads the wrangler config). */
export function makeThisProcessHermetic(): void {
  Object.assign(process.env, WRANGLER_ENV_OVERRIDES);
  for (const name of WRANGLER_ENV_REMOVED) delete process.env[name];
}
