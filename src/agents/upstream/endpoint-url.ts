/**
 * The URL of a provider's endpoint from a deployment variable. A URL that
 * cannot work is the deployment's mistake, not the model's: a non-retryable
 * error that names the variable but never shows its value (it may hold
 * credentials).
 */
import { AgentError } from '../types';

/**
 * @param configured the variable's value (unset: `fallback`)
 * @param names the variable and the key variable, for the messages
 * @param path appended to the URL's path; a query string is kept (Azure's `?api-version=`, a gateway's)
 * @example endpointUrl(env.OPENAI_BASE_URL, 'https://api.openai.com/v1', { url: 'OPENAI_BASE_URL', key: 'OPENAI_API_KEY' }, '/chat/completions')
 */
export function endpointUrl(configured: string | undefined, fallback: string, names: { url: string; key: string }, path: string): URL {
  let url: URL;
  try {
    url = new URL(configured || fallback);
  } catch {
    throw new AgentError('agent_misconfigured', `${names.url} is not a valid URL`, false);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new AgentError('agent_misconfigured', `${names.url} must be an http(s) URL`, false);
  }
  if (url.username || url.password) {
    // fetch refuses URLs with credentials; the key belongs in its own variable.
    throw new AgentError('agent_misconfigured', `${names.url} must not contain credentials; set ${names.key}`, false);
  }
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.hash = '';
  return url;
}

/**
 * Why the endpoint cannot work, or null: for `notConfigured`, so a bad base
 * URL is refused at the start, where the caller sees it, rather than as a
 * failed run (the run still checks: env can change).
 */
export function endpointProblem(endpoint: () => URL): string | null {
  try {
    endpoint();
    return null;
  } catch (err) {
    return (err as AgentError).message;
  }
}
