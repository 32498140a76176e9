/**
 * Profiles: what the deployer lets run. A request's `agent` names a profile;
 * the profile names the implementation (`demo`, `openai`, `workers-ai`) and
 * fixes what an anonymous caller may not choose: model, system prompt,
 * output cap, deadline, which options stay open.
 *
 * `PROFILES` (a JSON object) replaces the built-in set; without it the
 * built-in profiles keep v1 clients and `npm run dev` working, safely.
 */
import * as z from 'zod/mini';
import { getAgent } from '../agents/registry';

/** Profile names: the `agent` of a request, so URL- and log-safe. */
export const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Output cap of the built-in model profiles for anonymous callers: a long answer, not a book. */
export const BUILTIN_MAX_OUTPUT_TOKENS = 1024;

export type HumanCheck = 'ticket' | 'turnstile' | 'either';

export interface Profile {
  name: string;
  /** The implementation that runs it. */
  agent: string;
  description: string;
  model?: string;
  system?: string;
  maxOutputTokens?: number;
  temperature?: number;
  maxRunSeconds?: number;
  maxInputChars?: number;
  access: 'public' | 'key';
  /** Options an anonymous caller may set. */
  clientOptions: string[];
  allowSystemMessages: boolean;
  /** Fixed agent options (validated against the agent's schema). */
  options: Record<string, unknown>;
  humanCheck?: HumanCheck;
  default: boolean;
  /**
   * Built-in profiles cap only anonymous callers (an API-key caller keeps
   * every v1 option, as in v1); a deployer's profile caps everyone.
   */
  builtin: boolean;
}

/** Agents whose options carry a model and an output cap. */
const MODEL_AGENTS = new Set(['openai', 'workers-ai']);

const ProfileSchema = z.strictObject({
  agent: z.enum(['demo', 'openai', 'workers-ai']),
  description: z._default(z.string().check(z.maxLength(200)), ''),
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  system: z.optional(z.string().check(z.minLength(1), z.maxLength(16_000))),
  maxOutputTokens: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
  temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
  maxRunSeconds: z.optional(z.int().check(z.gte(1), z.lte(7 * 86_400))),
  maxInputChars: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
  access: z._default(z.enum(['public', 'key']), 'public'),
  clientOptions: z._default(z.array(z.string()), []),
  allowSystemMessages: z._default(z.boolean(), false),
  options: z._default(z.record(z.string(), z.unknown()), {}),
  humanCheck: z.optional(z.enum(['ticket', 'turnstile', 'either'])),
  default: z._default(z.boolean(), false),
});

const ProfilesSchema = z.record(z.string(), ProfileSchema);

/** The built-in set, used when `PROFILES` is unset. */
export function builtinProfiles(): Profile[] {
  const base = { access: 'public', allowSystemMessages: false, options: {}, default: false, builtin: true } as const;
  return [
    {
      ...base,
      name: 'demo',
      agent: 'demo',
      description: getAgent('demo')!.description,
      // It calls nothing upstream: v1's options stay open (see README, "Deploying in public", to cap it).
      clientOptions: ['tokens', 'delayMs', 'failAfter'],
      allowSystemMessages: true,
      default: true,
    },
    { ...base, name: 'openai', agent: 'openai', description: getAgent('openai')!.description, clientOptions: [], maxOutputTokens: BUILTIN_MAX_OUTPUT_TOKENS },
    {
      ...base,
      name: 'workers-ai',
      agent: 'workers-ai',
      description: getAgent('workers-ai')!.description,
      clientOptions: [],
      maxOutputTokens: BUILTIN_MAX_OUTPUT_TOKENS,
    },
  ];
}

/**
 * Parse `PROFILES`. Returns the issues (with paths under `PROFILES`) instead
 * of throwing, so the config module reports every mistake at once.
 */
export function parseProfiles(raw: string | undefined, maxRunSeconds: number): { profiles: Profile[]; issues: string[] } {
  if (raw === undefined || raw.trim() === '') return { profiles: builtinProfiles(), issues: [] };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { profiles: [], issues: ['PROFILES: is not valid JSON'] };
  }
  const parsed = ProfilesSchema.safeParse(json);
  if (!parsed.success) {
    return { profiles: [], issues: parsed.error.issues.map((i) => `${['PROFILES', ...i.path.map(String)].join('.')}: ${i.message}`) };
  }
  const issues: string[] = [];
  const profiles: Profile[] = [];
  for (const [name, p] of Object.entries(parsed.data)) {
    const where = `PROFILES.${name}`;
    if (!PROFILE_NAME.test(name)) issues.push(`${where}: profile names match ^[A-Za-z0-9._-]{1,64}$`);
    const agent = getAgent(p.agent)!;
    const known = new Set(Object.keys((agent.options as unknown as { def: { shape: object } }).def.shape));
    if (!MODEL_AGENTS.has(p.agent)) {
      for (const field of ['model', 'maxOutputTokens', 'temperature'] as const) {
        if (p[field] !== undefined) issues.push(`${where}.${field}: the ${p.agent} agent has no ${field}`);
      }
    }
    for (const option of p.clientOptions) {
      if (!known.has(option)) issues.push(`${where}.clientOptions: "${option}" is not an option of the ${p.agent} agent`);
    }
    const fixed = agent.options.safeParse(p.options);
    if (!fixed.success) {
      for (const i of fixed.error.issues) issues.push(`${[where, 'options', ...i.path.map(String)].join('.')}: ${i.message}`);
    }
    if (p.maxRunSeconds !== undefined && p.maxRunSeconds > maxRunSeconds) {
      issues.push(`${where}.maxRunSeconds: must be at most MAX_RUN_SECONDS (${maxRunSeconds})`);
    }
    profiles.push({ name, ...p, builtin: false });
  }
  if (profiles.length === 0) issues.push('PROFILES: names no profile');
  if (profiles.filter((p) => p.default).length > 1) issues.push('PROFILES: more than one profile has "default": true');
  return { profiles, issues };
}

/** The profile a request without `agent` gets: the one marked default, else `demo`, else the first. */
export function defaultProfile(profiles: Profile[]): Profile {
  return profiles.find((p) => p.default) ?? profiles.find((p) => p.name === 'demo') ?? profiles[0]!;
}
