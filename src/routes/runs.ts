/**
 * `/v1/runs` routes: validate, resolve the run's Durable Object by name,
 * forward. No run logic here; RunObject owns it.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { DEFAULT_AGENT, getAgent, listAgents } from '../agents/registry';
import { callerOf } from '../auth';
import { getConfig } from '../config';
import type { AppEnv } from '../env';
import { ApiError } from '../errors';
import { callerHeaders, type Caller, type StartInput } from '../run/protocol';
import { limitStarts } from '../rate-limit';
import { newRequestId } from '../run/token';
import { MAX_BODY_BYTES, REQUEST_ID, StartRunBody, describeIssues, parseLastEventId, zodIssues } from '../schemas';

type AppContext = Context<{ Bindings: AppEnv }>;

export const runs = new Hono<{ Bindings: AppEnv }>();

runs.post(
  '/',
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError('payload_too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    },
  }),
  async (c) => {
    const config = getConfig(c.env);
    const caller = await callerOf(c, config, false);
    const mayCreate = config.API_KEYS.length === 0 || caller.apiKey;
    // Credentials before the body: a caller with none learns nothing about
    // this deployment's agents from validation errors. A Bearer that is not
    // a key may be a run token: the run's object decides (attach or 409).
    if (!mayCreate && caller.token === undefined) {
      throw needsKey();
    }
    if (!caller.apiKey) await limitStarts(c);
    const input = await readStartInput(c, mayCreate);
    const stub = runStub(c, input.requestId);
    const wantsStream = (c.req.header('Accept') ?? '').includes('text/event-stream');

    if (wantsStream) {
      const afterSeq = lastEventId(c.req.header('Last-Event-ID'));
      const res = await stub.fetch('https://run/start', {
        method: 'POST',
        headers: { ...callerHeaders(caller, afterSeq), 'x-edgestream-may-create': mayCreate ? '1' : '0' },
        body: JSON.stringify(input),
      });
      if (res.status === 409) throw runExists(input.requestId);
      if (res.status === 401) throw needsKey();
      return res;
    }

    const outcome = await stub.start(input, caller, mayCreate);
    if (outcome.kind === 'exists') throw runExists(input.requestId);
    if (outcome.kind === 'unauthorized') throw needsKey();
    const base = new URL(c.req.url);
    const link = (path: string) => new URL(`/v1/runs/${encodeURIComponent(input.requestId)}${path}`, base).href;
    return c.json(
      {
        requestId: input.requestId,
        token: outcome.token,
        state: outcome.status.state,
        links: { events: link('/events'), status: link(''), cancel: link('/cancel') },
      },
      outcome.kind === 'created' ? 201 : 200,
    );
  },
);

runs.get('/:id/events', async (c) => {
  const requestId = runId(c);
  const config = getConfig(c.env);
  // Header first: EventSource sends it on reconnect, and it is the newer position.
  const afterSeq = lastEventId(c.req.header('Last-Event-ID') ?? c.req.query('lastEventId'));
  const caller = await callerOf(c, config, true);
  if (!caller.apiKey && caller.token === undefined) throw runNotFound();
  const res = await runStub(c, requestId).fetch('https://run/events', { headers: callerHeaders(caller, afterSeq) });
  if (res.status === 404) throw runNotFound();
  if (c.req.method === 'HEAD') {
    // Hono answers HEAD with the GET handler and drops the body without
    // cancelling it; cancel it so the run's object closes this reader now.
    await res.body?.cancel();
    return new Response(null, res);
  }
  return res;
});

runs.get('/:id', async (c) => {
  const { stub, caller } = await runAccess(c);
  const status = await stub.status(caller);
  if (!status) throw runNotFound();
  return c.json(status);
});

runs.post('/:id/cancel', async (c) => {
  const { stub, caller } = await runAccess(c);
  const outcome = await stub.cancel(caller);
  if (!outcome) throw runNotFound();
  return c.json(outcome.status, outcome.changed ? 202 : 200);
});

/** Every other method on a known path. */
for (const path of ['/', '/:id', '/:id/events', '/:id/cancel']) {
  runs.all(path, (c) => otherMethod(c, path === '/' || path === '/:id/cancel' ? 'POST' : 'GET'));
}

export const agents = new Hono<{ Bindings: AppEnv }>();

agents.get('/', async (c) => {
  const config = getConfig(c.env);
  if (config.API_KEYS.length > 0) {
    const caller = await callerOf(c, config, false);
    if (!caller.apiKey) throw needsKey();
  }
  return c.json({ agents: listAgents(c.env) });
});
agents.all('/', (c) => otherMethod(c, 'GET'));

// ---- helpers --------------------------------------------------------------

/**
 * A method the path does not serve: 405 with `Allow`. OPTIONS reaches this
 * only when CORS is off (the CORS middleware answers preflights itself); it
 * gets a plain 204 with `Allow`, as HTTP expects of OPTIONS.
 */
function otherMethod(c: AppContext, method: 'GET' | 'POST'): Response {
  const allow = method === 'GET' ? 'GET, HEAD, OPTIONS' : 'POST, OPTIONS';
  if (c.req.method === 'OPTIONS') return c.body(null, 204, { Allow: allow });
  throw new ApiError('method_not_allowed', `${c.req.method} is not allowed here; use ${method}`, undefined, {
    Allow: allow,
  });
}

/**
 * The validated start. A caller that may only attach (API keys required, a
 * Bearer that is not a key) gets the agent checks skipped: attaching ignores
 * the body's agent and options, and their errors would tell a caller without
 * a key which agents this deployment has.
 */
async function readStartInput(c: AppContext, mayCreate: boolean): Promise<StartInput> {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type.trim())) {
    throw new ApiError('unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch {
    throw new ApiError('invalid_json', 'the request body is not valid JSON');
  }
  const parsed = StartRunBody.safeParse(raw);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new ApiError('invalid_request', describeIssues(issues), issues);
  }
  const body = parsed.data;
  const agentName = body.agent ?? DEFAULT_AGENT;
  if (!mayCreate) {
    // Only an existing run can be attached to, and it is named by requestId.
    if (body.requestId === undefined) throw needsKey();
    return { requestId: body.requestId, agent: agentName, query: body.query, messages: body.messages, options: {} };
  }
  const agent = getAgent(agentName);
  if (!agent) {
    const known = listAgents(c.env).map((a) => a.name).join(', ');
    const shown = JSON.stringify(agentName.length > 64 ? `${agentName.slice(0, 64)}…` : agentName);
    throw new ApiError('unknown_agent', `no agent named ${shown}; available here: ${known}`);
  }
  const why = agent.notConfigured(c.env);
  if (why) throw new ApiError('agent_not_configured', `agent "${agentName}" is not configured: ${why}`);
  const options = agent.options.safeParse(body.options);
  if (!options.success) {
    const issues = zodIssues(options.error, ['options']);
    throw new ApiError('invalid_request', describeIssues(issues), issues);
  }
  return {
    requestId: body.requestId ?? newRequestId(),
    agent: agentName,
    query: body.query,
    messages: body.messages,
    options: options.data as Record<string, unknown>,
  };
}

function runStub(c: AppContext, requestId: string) {
  return c.env.RUNS.get(c.env.RUNS.idFromName(requestId));
}

function runId(c: AppContext): string {
  const id = c.req.param('id') ?? '';
  // An id that cannot exist cannot be found; same answer as a wrong token.
  if (!REQUEST_ID.test(id)) throw runNotFound();
  return id;
}

async function runAccess(c: AppContext): Promise<{ stub: ReturnType<typeof runStub>; caller: Caller }> {
  const requestId = runId(c);
  const caller = await callerOf(c, getConfig(c.env), true);
  if (!caller.apiKey && caller.token === undefined) throw runNotFound();
  return { stub: runStub(c, requestId), caller };
}

function lastEventId(raw: string | undefined): number {
  const seq = parseLastEventId(raw);
  if (seq === null) {
    throw new ApiError('invalid_last_event_id', 'Last-Event-ID must be a decimal integer >= 0 (the last seq you received)');
  }
  return seq;
}

function needsKey(): ApiError {
  return new ApiError('unauthorized', 'this deployment needs an API key: send Authorization: Bearer <key>');
}

function runNotFound(): ApiError {
  return new ApiError('run_not_found', 'no such run, or the token does not open it');
}

function runExists(requestId: string): ApiError {
  return new ApiError(
    'run_exists',
    `a run with requestId "${requestId}" exists; send its token as Authorization: Bearer <token> to attach`,
  );
}
