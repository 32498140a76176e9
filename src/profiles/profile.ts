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
  /** The agent's own deployer settings (the profile's other keys, validated by the agent's `settings`). */
  settings: Record<string, unknown>;
  humanCheck?: HumanCheck;
  default: boolean;
  /**
   * Built-in profiles cap only anonymous callers (an API-key caller keeps
   * every v1 option, as in v1); a deployer's profile caps everyone.
   */
  builtin: boolean;
}

/** Agents whose options carry a model and an output cap. */
export const MODEL_AGENTS = new Set(['openai', 'workers-ai', 'anthropic']);

/** The keys every profile may have; any other key is the agent's own setting. */
const ProfileSchema = z.looseObject({
  agent: z.string().check(z.refine((name) => getAgent(name) !== undefined, 'names no agent of this build')),
  description: z._default(z.string().check(z.maxLength(200)), ''),
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  system: z.optional(z.string().check(z.minLength(1), z.maxLength(16_000))),
  maxOutputTokens: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
  // The agent's own schema bounds it further (openai 0..2, workers-ai 0..5).
  temperature: z.optional(z.number().check(z.gte(0), z.lte(5))),
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
  const base = { access: 'public', allowSystemMessages: false, options: {}, settings: {}, default: false, builtin: true } as const;
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
    // The model agents: the deployment's model, a capped output, nothing else open to anonymous callers.
    ...[...MODEL_AGENTS].flatMap((name) => {
      const agent = getAgent(name);
      return agent
        ? [{ ...base, name, agent: name, description: agent.description, clientOptions: [], maxOutputTokens: BUILTIN_MAX_OUTPUT_TOKENS }]
        : [];
    }),
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
  for (const [name, loose] of Object.entries(parsed.data)) {
    const where = `PROFILES.${name}`;
    const common = new Set(Object.keys(ProfileSchema.def.shape));
    const extra = Object.fromEntries(Object.entries(loose).filter(([key]) => !common.has(key)));
    const p = loose as z.infer<typeof ProfileSchema> & Record<string, unknown>;
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
    // The profile's model, temperature and cap become agent options: the agent's schema judges them now, not at every start.
    const asOptions = { model: 'model', temperature: 'temperature', maxTokens: 'maxOutputTokens' } as const;
    const defaults = MODEL_AGENTS.has(p.agent)
      ? Object.fromEntries(Object.entries(asOptions).flatMap(([option, key]) => (p[key] === undefined ? [] : [[option, p[key]]])))
      : {};
    const fixed = agent.options.safeParse({ ...defaults, ...p.options });
    if (!fixed.success) {
      for (const i of fixed.error.issues) {
        const [first, ...rest] = i.path.map(String);
        const key =
          first !== undefined && first in defaults && !(first in p.options)
            ? [asOptions[first as keyof typeof asOptions]]
            : ['options', first ?? ''];
        issues.push(`${[where, ...key, ...rest].filter(Boolean).join('.')}: ${i.message}`);
      }
    }
    if (p.maxRunSeconds !== undefined && p.maxRunSeconds > maxRunSeconds) {
      issues.push(`${where}.maxRunSeconds: must be at most MAX_RUN_SECONDS (${maxRunSeconds})`);
    }
    let settings: Record<string, unknown> = {};
    if (agent.settings) {
      const parsedSettings = agent.settings.safeParse(extra);
      if (parsedSettings.success) settings = parsedSettings.data;
      else {
        for (const i of parsedSettings.error.issues) {
          // An unknown key is named as the field itself, like the other profile mistakes.
          const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : null;
          if (keys) for (const key of keys) issues.push(`${where}.${key}: not a profile key of the ${p.agent} agent`);
          else issues.push(`${[where, ...i.path.map(String)].join('.')}: ${i.message}`);
        }
      }
    } else {
      for (const key of Object.keys(extra)) issues.push(`${where}.${key}: not a profile key of the ${p.agent} agent`);
    }
    const profile: Profile = {
      name,
      agent: p.agent,
      description: p.description,
      access: p.access,
      clientOptions: p.clientOptions,
      allowSystemMessages: p.allowSystemMessages,
      options: p.options,
      settings,
      default: p.default,
      builtin: false,
    };
    for (const key of ['model', 'system', 'maxOutputTokens', 'temperature', 'maxRunSeconds', 'maxInputChars', 'humanCheck'] as const) {
      if (p[key] !== undefined) (profile as unknown as Record<string, unknown>)[key] = p[key];
    }
    profiles.push(profile);
  }
  if (profiles.length === 0) issues.push('PROFILES: names no profile');
  if (profiles.filter((p) => p.default).length > 1) issues.push('PROFILES: more than one profile has "default": true');
  return { profiles, issues };
}

/** The profile a request without `agent` gets: the one marked default, else `demo`, else the first. */
export function defaultProfile(profiles: Profile[]): Profile {
  return profiles.find((p) => p.default) ?? profiles.find((p) => p.name === 'demo') ?? profiles[0]!;
}
