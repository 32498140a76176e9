/**
 * From what a caller asked to what runs: a profile's fixed values win over
 * an anonymous caller's, and the result is validated by the agent's own
 * schema. Pure: no env, no storage; errors are `ApiError`s naming the field.
 */
import { getAgent } from '../agents/registry';
import type { ChatMessage } from '../agents/types';
import { ApiError, type ErrorIssue } from '../errors';
import { describeIssues, zodIssues } from '../schemas';
import type { Profile } from './profile';

export interface Requested {
  query: string;
  messages: ChatMessage[];
  options: Record<string, unknown>;
}

export interface Resolved {
  options: Record<string, unknown>;
  messages: ChatMessage[];
}

/**
 * @param trusted the caller holds an API key: it may set every option of the
 *   agent and send system messages; the profile's values are its defaults.
 */
export function resolveRun(profile: Profile, req: Requested, trusted: boolean): Resolved {
  const issues: ErrorIssue[] = [];
  if (!trusted) {
    for (const name of Object.keys(req.options)) {
      if (!profile.clientOptions.includes(name)) {
        issues.push({ path: ['options', name], message: `agent "${profile.name}" does not let a client set ${name}` });
      }
    }
  }
  if (!trusted && !profile.allowSystemMessages) {
    req.messages.forEach((m, i) => {
      if (m.role === 'system')
        issues.push({ path: ['messages', i, 'role'], message: `agent "${profile.name}" does not accept system messages` });
    });
  }
  if (profile.maxInputChars !== undefined) {
    const chars = req.messages.reduce((n, m) => n + m.content.length, req.query.length);
    if (chars > profile.maxInputChars) {
      issues.push({
        path: ['query'],
        message: `the query and messages are ${chars} characters; agent "${profile.name}" takes at most ${profile.maxInputChars}`,
      });
    }
  }
  if (issues.length) throw new ApiError('invalid_request', describeIssues(issues), issues);

  const options: Record<string, unknown> = { ...profileDefaults(profile, trusted), ...profile.options, ...req.options };
  const cap = profile.maxOutputTokens;
  // The cap is sent upstream always (a deployer's profile) or for anonymous callers (built-in ones).
  if (cap !== undefined && (!trusted || !profile.builtin)) {
    const asked = typeof options.maxTokens === 'number' ? options.maxTokens : cap;
    options.maxTokens = Math.min(asked, cap);
  }
  const agent = getAgent(profile.agent)!;
  const parsed = agent.options.safeParse(options);
  if (!parsed.success) {
    const found = zodIssues(parsed.error, ['options']);
    throw new ApiError('invalid_request', describeIssues(found), found);
  }
  const messages = profile.system ? [{ role: 'system' as const, content: profile.system }, ...req.messages] : req.messages;
  return { options: parsed.data as Record<string, unknown>, messages };
}

function profileDefaults(profile: Profile, trusted: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (profile.model !== undefined) out.model = profile.model;
  if (profile.temperature !== undefined) out.temperature = profile.temperature;
  // A trusted caller of a built-in profile is a v1 caller: no cap unless it asks for one.
  if (profile.maxOutputTokens !== undefined && !(trusted && profile.builtin)) out.maxTokens = profile.maxOutputTokens;
  return out;
}
