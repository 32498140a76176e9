/**
 * The trusted backend of the node tests: a `wrangler dev` with `API_KEYS`,
 * and starts that carry the key. Since profiles, an anonymous caller of the
 * built-in `openai` profile gets the deployment's model and may set no
 * option; a test that picks the fake upstream's scenario (by `model`) acts
 * as the site's backend, as a real deployment's backend would.
 */

/** An API key for test deployments; never a real one. */
export const BACKEND_KEY = 'edgestream-test-backend-key-0123456789';

/** `vars` for startDevServer: the deployment knows the key. */
export const BACKEND_VARS = { API_KEYS: BACKEND_KEY } as const;

/** The header that makes a request the backend's. */
export const AS_BACKEND = { Authorization: `Bearer ${BACKEND_KEY}` } as const;

/**
 * `POST /v1/runs` as the backend (JSON mode unless `headers` say otherwise).
 * @returns the raw response, for tests that check the status themselves
 */
export function startAsBackend(base: string, body: object, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...AS_BACKEND, ...headers },
    body: JSON.stringify(body),
  });
}

/**
 * Start a run as the backend; throws unless it was created (201).
 * @returns its requestId and token (the token opens the run for any reader)
 */
export async function createRunAsBackend(base: string, body: object): Promise<{ requestId: string; token: string }> {
  const res = await startAsBackend(base, body);
  if (res.status !== 201) throw new Error(`POST /v1/runs as the backend: ${res.status} ${await res.text()}`);
  return (await res.json()) as { requestId: string; token: string };
}
