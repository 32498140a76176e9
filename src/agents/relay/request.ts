/**
 * Asking the upstream: the profile's request with the run's values filled
 * in and its secrets resolved, and the response judged before any byte of
 * it is relayed. Secrets go only into the request's headers: never into an
 * event, an error message or the log.
 */
import type { AppEnv } from '../../env';
import { AgentError, type AgentInput } from '../types';
import { errorCodeInBody, upstreamHttpError } from '../upstream/errors';
import { textPrefix } from '../upstream/sse';
import { requestUpstream } from '../upstream/request';
import { DEFAULT_BODY, SECRET_REF, fillTemplate, type RelaySettings } from './settings';

/** How much of an error answer to read for its code. */
const ERROR_BODY_BYTES = 8 * 1024;
/** How long to wait for an error body: the status already says what happened. */
const ERROR_BODY_WAIT_MS = 5_000;

export interface Upstream {
  body: ReadableStream<Uint8Array>;
}

/**
 * The profile's headers with every `secret:NAME` replaced by env[NAME].
 * A secret that is not set is the deployment's mistake: `agent_not_configured`, naming NAME.
 */
export function resolveHeaders(headers: Record<string, string>, env: AppEnv): { headers: Record<string, string>; secrets: string[] } {
  const vars = env as unknown as Record<string, unknown>;
  const resolved: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const ref = SECRET_REF.exec(value);
    if (!ref) {
      resolved[name] = value;
      continue;
    }
    const secret = vars[ref[1]!];
    if (typeof secret !== 'string' || secret === '') {
      throw new AgentError('agent_not_configured', `the relay needs the secret ${ref[1]} (wrangler secret put ${ref[1]})`, false);
    }
    if (/[\r\n\0]/.test(secret))
      throw new AgentError('agent_misconfigured', `the secret ${ref[1]} is not a valid header value (it holds a line break)`, false);
    resolved[name] = secret;
    secrets.push(secret);
  }
  return { headers: resolved, secrets };
}

/**
 * Send the profile's request; `lastEventId` resumes an upstream stream after a restart.
 * `startSecret` goes into a JSON object body (beside what the template
 * holds), for an upstream that attaches a repeated start by it.
 * @returns the event stream, or null when the run was cancelled (or passed its deadline) first
 */
export async function openUpstream(
  settings: RelaySettings,
  input: AgentInput<unknown>,
  env: AppEnv,
  signal: AbortSignal,
  idleMs: number,
  lastEventId?: string,
  startSecret?: string,
): Promise<Upstream | null> {
  const { headers: configured, secrets } = resolveHeaders(settings.headers, env);
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  let body: string | undefined;
  if (settings.method === 'POST') {
    headers['Content-Type'] = 'application/json';
    const filled = fillTemplate(settings.body ?? DEFAULT_BODY, {
      query: input.query,
      requestId: input.requestId,
      messages: input.messages,
    });
    const withSecret =
      startSecret !== undefined && filled !== null && typeof filled === 'object' && !Array.isArray(filled)
        ? { ...filled, startSecret }
        : filled;
    body = JSON.stringify(withSecret);
  }
  Object.assign(headers, configured);
  if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;

  // Not following redirects matters here too: the secrets go only where the profile says.
  const res = await requestUpstream(settings.url, { method: settings.method, headers, body }, signal, idleMs, {
    timeout: (ms) => `the upstream did not answer within ${ms} ms`,
    unreachable: "could not reach the relay's upstream",
    redirects: "the relay's url redirects; set the final URL in the profile",
  });
  if (!res) return null;
  if (!res.ok) {
    const detail = await textPrefix(res, ERROR_BODY_BYTES, Math.min(idleMs, ERROR_BODY_WAIT_MS));
    throw upstreamHttpError(res.status, 'the upstream', safeCode(detail, secrets));
  }
  if (res.status === 204 || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new AgentError('upstream_incomplete', 'the upstream answered without a stream (nothing to relay)', true);
  }
  if (!/^\s*text\/event-stream/i.test(res.headers.get('Content-Type') ?? '')) {
    // A proxy's error page, a JSON error with status 200, a URL pointing at the wrong thing: asking again gets the same.
    const detail = await textPrefix(res, ERROR_BODY_BYTES, Math.min(idleMs, ERROR_BODY_WAIT_MS));
    const code = safeCode(detail, secrets);
    if (code) throw new AgentError('upstream_error', `the upstream answered with an error instead of a stream (${code})`, false);
    throw new AgentError('upstream_malformed', "the upstream did not answer with an event stream (check the profile's url)", false);
  }
  return { body: res.body };
}

/** The error code of a JSON error body, unless it could be (part of) any of the secrets. */
function safeCode(body: string, secrets: string[]): string | undefined {
  const code = errorCodeInBody(body);
  if (code === undefined) return undefined;
  return secrets.every((secret) => errorCodeInBody(body, secret) === code) ? code : undefined;
}
