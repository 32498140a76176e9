/**
 * `/v1/runs` routes: validate, resolve the run's Durable Object by name,
 * forward. No run logic here; RunObject owns it.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { isExternalRun } from '../agents/external/external';
import { getAgent } from '../agents/registry';
import { bearer, callerOf, tokenMayOpen } from '../auth';
import { getConfig, type Config } from '../config';
import type { AppEnv } from '../env';
import { ApiError, type ErrorIssue } from '../errors';
import { clientKey } from '../limits/client-key';
import { limitFailedAuth, limitStarts } from '../limits/rate-limit';
import { defaultProfile, type Profile } from '../profiles/profile';
import { resolveRun } from '../profiles/resolve';
import type {
  AppendEvent,
  AppendOutcome,
  Caller,
  CreateChecks,
  ProducerPosition,
  ReadOutcome,
  Refusal,
  StartInput,
  StartRequest,
} from '../run/protocol';
import { runStub, type RunStub } from '../run/run-stub';
import { SSE_HEADERS } from '../sse/stream';
import { newRequestId, newToken } from '../run/token';
import type { UsageLimits } from '../limits/usage';
import { checkHuman } from '../profiles/human-check';
import {
  AppendBody,
  MAX_APPEND_BODY_BYTES,
  MAX_BODY_BYTES,
  PRODUCER_HEADERS,
  PRODUCER_ID,
  REQUEST_ID,
  StartRunBody,
  appendOrderIssues,
  describeIssues,
  parseLastEventId,
  parseProducerNumber,
  zodIssues,
} from '../schemas';

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
    // Anonymous callers through the edge are limited; API keys and loopback are not.
    const client = caller.apiKey ? null : clientKey(c.req.header('CF-Connecting-IP'));
    // A Bearer that is neither a key nor opens the run is a failed authentication.
    const presented = credentialPresented(c, caller);
    const failed = () => authFailed(c, client);
    // Credentials before the body: a caller with none learns nothing about
    // this deployment's agents from validation errors. A Bearer that is not
    // a key may be a run token: the run's object decides (attach or 409).
    if (!mayCreate && caller.token === undefined) {
      if (presented) await failed();
      throw needsKey();
    }
    await limitStarts(c, client);
    const { input, checks, attachOnly } = await readStart(c, config, caller, mayCreate, client);
    if (client !== null) caller.maxReaders = config.LIMIT_READERS_PER_RUN;
    // A token that cannot be this run's (TOKEN_SECRET's HMAC) opens nothing: the object is not asked about it.
    if (caller.token !== undefined && !(await tokenMayOpen(caller.token, input.requestId, config))) {
      await failed();
      delete caller.token;
    }
    const stub = runStub(c.env, input.requestId);
    const request: StartRequest = { input, checks, mayCreate: mayCreate && !attachOnly };

    if ((c.req.header('Accept') ?? '').includes('text/event-stream')) {
      const afterSeq = lastEventId(c.req.header('Last-Event-ID'));
      const outcome = await stub.startStream(request, caller, afterSeq);
      if (outcome.kind === 'exists') {
        await failed();
        throw runExists(input.requestId);
      }
      if (outcome.kind === 'unauthorized') {
        if (presented) await failed();
        throw attachOnly ? humanCheckFailed(attachOnly) : needsKey();
      }
      if (outcome.kind === 'refused') throw refused(outcome.refusal);
      return streamResponse(outcome.read, {
        'X-Request-Id': outcome.status.requestId,
        'X-Run-Token': outcome.token,
        // It carries a token: no cache may keep it.
        'Cache-Control': 'no-cache, no-store, no-transform',
      });
    }

    const outcome = await stub.start(request, caller);
    if (outcome.kind === 'exists') {
      await failed();
      throw runExists(input.requestId);
    }
    if (outcome.kind === 'unauthorized') {
      if (presented) await failed();
      throw attachOnly ? humanCheckFailed(attachOnly) : needsKey();
    }
    if (outcome.kind === 'refused') throw refused(outcome.refusal);
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
      // It carries a token: no cache may keep it.
      { 'Cache-Control': 'no-store' },
    );
  },
);

runs.get('/:id/events', async (c) => {
  const requestId = runId(c);
  // Header first: EventSource sends it on reconnect, and it is the newer position.
  const afterSeq = lastEventId(c.req.header('Last-Event-ID') ?? c.req.query('lastEventId'));
  const { stub, caller, client } = await runAccess(c, requestId);
  const outcome = await stub.read(caller, afterSeq);
  if (outcome.kind === 'not_found') {
    await authFailed(c, client);
    throw runNotFound();
  }
  if (c.req.method === 'HEAD') {
    // Hono answers HEAD with the GET handler and drops the body without
    // cancelling it; cancel it so the run's object closes this reader now.
    if (outcome.kind === 'stream') await outcome.body.cancel();
    if (outcome.kind === 'refused') throw refused(outcome.refusal);
    return new Response(null, { status: outcome.kind === 'stream' ? 200 : 204, headers: outcome.kind === 'stream' ? SSE_HEADERS : {} });
  }
  return streamResponse(outcome, {});
});

runs.get('/:id', async (c) => {
  const { stub, caller, client } = await runAccess(c, runId(c));
  const status = await stub.status(caller);
  if (!status) {
    await authFailed(c, client);
    throw runNotFound();
  }
  return c.json(status);
});

runs.post('/:id/cancel', async (c) => {
  const { stub, caller, client } = await runAccess(c, runId(c));
  const outcome = await stub.cancel(caller);
  if (!outcome) {
    await authFailed(c, client);
    throw runNotFound();
  }
  return c.json(outcome.status, outcome.changed ? 202 : 200);
});

/**
 * Events from an outside producer, for a run of an external profile: a
 * JSON array of event bodies, idempotent per producer (`Producer-Id`,
 * `Producer-Epoch`, `Producer-Seq`, as Durable Streams' idempotent
 * producers). Only API keys write; a run token reads.
 */
runs.post(
  '/:id/events',
  bodyLimit({
    maxSize: MAX_APPEND_BODY_BYTES,
    onError: () => {
      throw new ApiError(
        'payload_too_large',
        `the request body is larger than ${MAX_APPEND_BODY_BYTES} bytes; send fewer events an append`,
      );
    },
  }),
  async (c) => {
    const requestId = runId(c);
    const caller = await callerOf(c, getConfig(c.env), false);
    if (!caller.apiKey) {
      if (credentialPresented(c, caller)) await authFailed(c, clientKey(c.req.header('CF-Connecting-IP')));
      throw new ApiError('unauthorized', 'appending events needs an API key: send Authorization: Bearer <key> (a run token only reads)');
    }
    const { producer, issues } = producerOf(c);
    const parsed = AppendBody.safeParse(await readJson(c));
    issues.push(...(parsed.success ? appendOrderIssues(parsed.data) : zodIssues(parsed.error)));
    if (!parsed.success || issues.length > 0 || !producer) throw new ApiError('invalid_request', describeIssues(issues), issues);
    const outcome = await runStub(c.env, requestId).append(caller, producer, parsed.data as AppendEvent[]);
    return appendAnswer(c, producer, outcome);
  },
);

/** Every other method on a known path. */
const ALLOW: Record<string, string> = {
  '/': 'POST, OPTIONS',
  '/:id': 'GET, HEAD, OPTIONS',
  '/:id/events': 'GET, HEAD, POST, OPTIONS',
  '/:id/cancel': 'POST, OPTIONS',
};
for (const [path, allow] of Object.entries(ALLOW)) {
  runs.all(path, (c) => otherMethod(c, allow));
}

export const agents = new Hono<{ Bindings: AppEnv }>();

agents.get('/', async (c) => {
  const config = getConfig(c.env);
  const caller = await callerOf(c, config, false);
  if (config.API_KEYS.length > 0 && !caller.apiKey) {
    if (credentialPresented(c, caller)) await authFailed(c, clientKey(c.req.header('CF-Connecting-IP')));
    throw needsKey();
  }
  // Names, descriptions and what a widget must do to start; never models, prompts or limits.
  const listed = usableProfiles(c.env, config, caller.apiKey).map((p) => {
    const entry: Record<string, unknown> = { name: p.name, description: p.description, default: p === defaultProfile(config.profiles) };
    if (p.humanCheck && !caller.apiKey) {
      entry.humanCheck = p.humanCheck;
      if (p.humanCheck !== 'ticket' && config.TURNSTILE_SITE_KEY) entry.turnstileSiteKey = config.TURNSTILE_SITE_KEY;
    }
    return entry;
  });
  return c.json({ agents: listed });
});
agents.all('/', (c) => otherMethod(c, 'GET, HEAD, OPTIONS'));

// ---- helpers --------------------------------------------------------------

/**
 * A method the path does not serve: 405 with `Allow`. OPTIONS reaches this
 * only when CORS is off (the CORS middleware answers preflights itself); it
 * gets a plain 204 with `Allow`, as HTTP expects of OPTIONS.
 */
export function otherMethod(c: AppContext, allow: string): Response {
  if (c.req.method === 'OPTIONS') return c.body(null, 204, { Allow: allow });
  const methods = allow.split(', ').filter((m) => m !== 'HEAD' && m !== 'OPTIONS');
  throw new ApiError('method_not_allowed', `${c.req.method} is not allowed here; use ${methods.join(' or ')}`, undefined, {
    Allow: allow,
  });
}

/** A JSON request body, parsed; 415 and 400 as the contract says. */
export async function readJson(c: AppContext): Promise<unknown> {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type.trim())) {
    throw new ApiError('unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
  }
  try {
    return JSON.parse(await c.req.text());
  } catch {
    throw new ApiError('invalid_json', 'the request body is not valid JSON');
  }
}

/** The producer headers: all three, or the issues naming each one that is missing or wrong. */
function producerOf(c: AppContext): { producer: ProducerPosition | null; issues: ErrorIssue[] } {
  const issues: ErrorIssue[] = [];
  const id = c.req.header(PRODUCER_HEADERS.id);
  if (id === undefined) issues.push({ path: [PRODUCER_HEADERS.id], message: 'Required' });
  else if (!PRODUCER_ID.test(id)) issues.push({ path: [PRODUCER_HEADERS.id], message: 'must match ^[A-Za-z0-9._:-]{1,128}$' });
  const number = (name: string) => {
    const raw = c.req.header(name);
    const value = parseProducerNumber(raw);
    if (value === null)
      issues.push({ path: [name], message: raw === undefined ? 'Required' : 'must be a decimal integer 0..9007199254740991' });
    return value;
  };
  const epoch = number(PRODUCER_HEADERS.epoch);
  const seq = number(PRODUCER_HEADERS.seq);
  const producer = issues.length === 0 ? { id: id!, epoch: epoch!, seq: seq! } : null;
  return { producer, issues };
}

/** The answer to an append: the seqs its events got, or why it was refused. */
function appendAnswer(c: AppContext, producer: ProducerPosition, outcome: AppendOutcome): Response {
  switch (outcome.kind) {
    case 'appended': {
      const seqs = outcome.firstSeq !== undefined ? { firstSeq: outcome.firstSeq, lastSeq: outcome.lastSeq } : {};
      return c.json(
        { ...seqs, nextProducerSeq: outcome.producerSeq + 1, duplicate: outcome.duplicate },
        200,
        // As Durable Streams answers: the epoch and the highest seq acknowledged in it.
        { [PRODUCER_HEADERS.epoch]: String(outcome.epoch), [PRODUCER_HEADERS.seq]: String(outcome.producerSeq) },
      );
    }
    case 'not_found':
      throw runNotFound();
    case 'not_external':
      throw new ApiError(
        'run_not_external',
        `the run's events come from its agent ("${outcome.agent}"); only runs of an external profile take appended events`,
      );
    case 'ended':
      throw new ApiError('run_ended', `the run has ended (${outcome.state}); it takes no more events`, undefined, undefined, {
        state: outcome.state,
      });
    case 'fenced':
      throw new ApiError(
        'producer_fenced',
        `Producer-Epoch ${producer.epoch} is older than epoch ${outcome.currentEpoch} of producer "${producer.id}": a newer instance took over`,
        undefined,
        { [PRODUCER_HEADERS.epoch]: String(outcome.currentEpoch) },
        { currentEpoch: outcome.currentEpoch },
      );
    case 'gap': {
      const why =
        outcome.expectedSeq === 0 ? 'a new producer or epoch starts at 0' : `the last one acknowledged is ${outcome.expectedSeq - 1}`;
      throw new ApiError(
        'producer_seq_gap',
        `Producer-Seq ${outcome.receivedSeq} is not the next of producer "${producer.id}" in epoch ${producer.epoch}: send ${outcome.expectedSeq} (${why})`,
        undefined,
        { 'Producer-Expected-Seq': String(outcome.expectedSeq), 'Producer-Received-Seq': String(outcome.receivedSeq) },
        { expectedSeq: outcome.expectedSeq, receivedSeq: outcome.receivedSeq },
      );
    }
    case 'not_stored':
      throw new ApiError('internal', 'the events could not be stored (none were); retry with the same Producer-Seq');
  }
}

/**
 * The validated start: the body, resolved through its profile. A caller that
 * may only attach (API keys required, a Bearer that is not a key) gets the
 * profile checks skipped: attaching ignores the body's agent and options,
 * and their errors would tell a caller without a key which agents this
 * deployment has.
 */
async function readStart(
  c: AppContext,
  config: Config,
  caller: Caller,
  mayCreate: boolean,
  client: string | null,
): Promise<{ input: StartInput; checks: CreateChecks; attachOnly?: string }> {
  const parsed = StartRunBody.safeParse(await readJson(c));
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new ApiError('invalid_request', describeIssues(issues), issues);
  }
  return resolveStart(c, config, caller, mayCreate, client, parsed.data);
}

/**
 * A validated start body, resolved through its profile into the run's input
 * and the checks its creation needs (`readStart` without the parsing; a chat
 * turn builds its body from the conversation).
 */
export async function resolveStart(
  c: AppContext,
  config: Config,
  caller: Caller,
  mayCreate: boolean,
  client: string | null,
  body: StartRunBody,
): Promise<{ input: StartInput; checks: CreateChecks; attachOnly?: string }> {
  const requestId = body.requestId ?? newRequestId();
  // Minted here, where TOKEN_SECRET is: the run keeps its hash if it needs a new token.
  const checks: CreateChecks = { newToken: await newToken(requestId, config.TOKEN_SECRET) };
  if (body.startSecret !== undefined) checks.startSecret = body.startSecret;
  if (!mayCreate) {
    // Only an existing run can be attached to, and it is named by requestId.
    if (body.requestId === undefined) {
      if (credentialPresented(c, caller)) await authFailed(c, client);
      throw needsKey();
    }
    const input = { requestId, agent: body.agent ?? '', query: body.query, messages: body.messages, options: {} };
    return { input, checks };
  }
  const profile = body.agent === undefined ? defaultProfile(config.profiles) : config.profiles.find((p) => p.name === body.agent);
  if (profile && !profileListedFor(profile, caller.apiKey)) {
    const why = isExternalRun(profile) ? ' (its events come from a backend that holds one)' : '';
    if (credentialPresented(c, caller)) await authFailed(c, client);
    throw new ApiError('unauthorized', `agent "${profile.name}" needs an API key${why}: send Authorization: Bearer <key>`);
  }
  if (!profile) {
    const known = usableProfiles(c.env, config, caller.apiKey)
      .map((p) => p.name)
      .join(', ');
    const name = body.agent ?? '';
    const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
    // An agent kind with no profile of that name (relay, external, echo): say how one comes to exist.
    const kind = getAgent(name) ? `; "${name}" runs only through a profile the deployer defines in PROFILES` : '';
    throw new ApiError('unknown_agent', `no agent named ${shown}; available here: ${known}${kind}`);
  }
  const why = getAgent(profile.agent)!.notConfigured(c.env);
  if (why) throw new ApiError('agent_not_configured', `agent "${profile.name}" is not configured: ${why}`);
  const resolved = resolveRun(profile, body, caller.apiKey);
  const input: StartInput = {
    requestId,
    profile: profile.name,
    agent: profile.agent,
    query: body.query,
    messages: resolved.messages,
    options: resolved.options,
    maxRunSeconds: profile.maxRunSeconds ?? config.MAX_RUN_SECONDS,
  };
  if (Object.keys(profile.settings).length > 0) input.settings = profile.settings;
  let charged = client;
  let attachOnly: string | undefined;
  if (profile.humanCheck && !caller.apiKey) {
    const verdict = await checkHuman(
      {
        check: profile.humanCheck,
        ticket: body.ticket,
        turnstileToken: body.turnstileToken,
        remoteIp: c.req.header('CF-Connecting-IP'),
        requestId,
      },
      profile.name,
      config,
    );
    if (verdict.ok) {
      // A ticket that names a user charges that user, wherever they connect from.
      if (verdict.sub !== undefined && charged !== null) charged = `user:${verdict.sub}`;
    } else if (caller.token !== undefined || body.startSecret !== undefined) {
      // The check guards creating a run. A run token or a start secret may
      // still attach to the run it opens (a retried POST), never create one.
      attachOnly = verdict.reason;
    } else {
      // Evidence that was presented and refused is a failed authentication (guessing tickets).
      if (body.ticket !== undefined || body.turnstileToken !== undefined) await authFailed(c, client);
      throw humanCheckFailed(verdict.reason);
    }
  }
  if (charged !== null) checks.usage = { client: charged, limits: usageLimits(config) };
  return attachOnly ? { input, checks, attachOnly } : { input, checks };
}

function usageLimits(config: Config): UsageLimits {
  return {
    runningPerClient: config.LIMIT_RUNNING_PER_CLIENT,
    clientTokensPerDay: config.BUDGET_CLIENT_TOKENS_PER_DAY,
    clientRowsPerDay: config.BUDGET_CLIENT_ROWS_PER_DAY,
    deploymentTokensPerDay: config.BUDGET_DEPLOYMENT_TOKENS_PER_DAY,
    deploymentRowsPerDay: config.BUDGET_DEPLOYMENT_ROWS_PER_DAY,
  };
}

function humanCheckFailed(reason: string): ApiError {
  return new ApiError('human_check_failed', reason);
}

/** A profile a caller may see and start: public ones for anonymous callers; external ones only with an API key. */
function profileListedFor(profile: Profile, trusted: boolean): boolean {
  return trusted || (profile.access === 'public' && !isExternalRun(profile));
}

/** Profiles this caller may start and this deployment can run. */
function usableProfiles(env: AppEnv, config: Config, trusted: boolean): Profile[] {
  return config.profiles.filter((p) => profileListedFor(p, trusted) && getAgent(p.agent)!.notConfigured(env) === null);
}

/** Requests already counted as a failed authentication: one request counts once at most. */
const countedFailures = new WeakSet<Request>();

/**
 * Count a failed authentication of an anonymous client (a credential was
 * presented and refused); past AUTH_LIMITER's limit the answer is 429
 * instead of the 401/403/404/409 it would have been. A request counts once
 * however many of its checks fail.
 */
export async function authFailed(c: AppContext, client: string | null): Promise<void> {
  if (countedFailures.has(c.req.raw)) return;
  countedFailures.add(c.req.raw);
  const retryAfterS = await limitFailedAuth(c.env, client);
  if (retryAfterS !== null) {
    throw new ApiError('rate_limited', `too many failed authentications from this client; retry in ${retryAfterS} s`, undefined, {
      'Retry-After': String(retryAfterS),
    });
  }
}

export function refused(refusal: Refusal): ApiError {
  const headers = refusal.retryAfterS !== undefined ? { 'Retry-After': String(refusal.retryAfterS) } : undefined;
  return new ApiError(refusal.code, refusal.message, undefined, headers);
}

/**
 * A reader's outcome as HTTP: the SSE stream, a 204 when nothing can follow
 * ([spec] it tells EventSource to stop reconnecting), or the refusal.
 */
function streamResponse(read: Exclude<ReadOutcome, { kind: 'not_found' }>, headers: Record<string, string>): Response {
  if (read.kind === 'refused') throw refused(read.refusal);
  if (read.kind === 'no_content') return new Response(null, { status: 204, headers });
  return new Response(read.body, { status: 200, headers: { ...SSE_HEADERS, ...headers } });
}

function runId(c: AppContext): string {
  const id = c.req.param('id') ?? '';
  // An id that cannot exist cannot be found; same answer as a wrong token.
  if (!REQUEST_ID.test(id)) throw runNotFound();
  return id;
}

/**
 * The run's object and who asks. A caller with nothing that could open the
 * run (no token, or one TOKEN_SECRET's HMAC says is not this run's) is
 * answered here, without waking the run's object.
 */
async function runAccess(c: AppContext, requestId: string): Promise<{ stub: RunStub; caller: Caller; client: string | null }> {
  const config = getConfig(c.env);
  const caller = await callerOf(c, config, true);
  const client = caller.apiKey ? null : clientKey(c.req.header('CF-Connecting-IP'));
  if (client !== null) caller.maxReaders = config.LIMIT_READERS_PER_RUN;
  if (!caller.apiKey && (caller.token === undefined || !(await tokenMayOpen(caller.token, requestId, config)))) {
    if (credentialPresented(c, caller)) await authFailed(c, client);
    throw runNotFound();
  }
  return { stub: runStub(c.env, requestId), caller, client };
}

export function lastEventId(raw: string | undefined): number {
  const seq = parseLastEventId(raw);
  if (seq === null) {
    throw new ApiError('invalid_last_event_id', 'Last-Event-ID must be a decimal integer >= 0 (the last seq you received)');
  }
  return seq;
}

/**
 * Did the caller present a credential (a Bearer header, or a `?token=` where
 * one is read)? One that is refused counts as a failed authentication; no
 * credential at all does not. An API key that matched is never refused.
 */
export function credentialPresented(c: AppContext, caller: Caller): boolean {
  return !caller.apiKey && (caller.token !== undefined || bearer(c) !== undefined);
}

export function needsKey(): ApiError {
  return new ApiError('unauthorized', 'this deployment needs an API key: send Authorization: Bearer <key>');
}

function runNotFound(): ApiError {
  return new ApiError('run_not_found', 'no such run, or the token does not open it');
}

function runExists(requestId: string): ApiError {
  return new ApiError(
    'run_exists',
    `a run with requestId "${requestId}" exists; to attach, send its token as Authorization: Bearer <token>, or the startSecret it was started with`,
  );
}
