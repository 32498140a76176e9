/**
 * `/v1/chat` routes: conversations kept on the server, one ChatObject per
 * chat id, each turn an ordinary run.
 *
 * - `POST /v1/chat` and `GET /v1/chat/{chatId}/stream` are what the AI SDK's
 *   `useChat` (its `DefaultChatTransport`) calls, answered as its UI message
 *   stream.
 * - `POST|GET /v1/chat/{chatId}/messages`, `GET .../events` and
 *   `POST .../stop` are edgestream's own: JSON, and the run's SSE stream.
 *
 * Here: validate, read the credential, resolve the turn's run through the
 * same start path as `POST /v1/runs`; the chat decides the rest.
 */
import { Hono, type Context } from 'hono';
import type * as z from 'zod/mini';
import { bodyLimit } from 'hono/body-limit';
import { fitHistory, type HistoryMessage } from '../chat/history';
import { regenerate, useChatTurn } from '../chat/use-chat-request';
import { bearer } from '../auth';
import { chatAuthOf } from '../chat/credential';
import { CHAT_ID, MESSAGE_ID, type ChatAuth, type StartTurnOutcome, type TurnKind } from '../chat/protocol';
import { MAX_USE_CHAT_BODY_BYTES, TurnBody, UseChatBody } from '../chat/schemas';
import { UI_MESSAGE_STREAM_HEADERS, type UiChunk } from '../chat/ui-message-stream';
import { uiStreamOfRun } from '../chat/ui-stream';
import { getConfig, type Config } from '../config';
import type { AppEnv } from '../env';
import { ApiError } from '../errors';
import { clientKey } from '../limits/client-key';
import { limitStarts } from '../limits/rate-limit';
import type { Caller, ReadOutcome } from '../run/protocol';
import { runStub } from '../run/run-stub';
import { newRequestId } from '../run/token';
import { MAX_BODY_BYTES, describeIssues, zodIssues, type StartRunBody } from '../schemas';
import { SSE_HEADERS } from '../sse/stream';
import { authFailed, lastEventId, needsKey, otherMethod, readJson, refused, resolveStart } from './runs';

type AppContext = Context<{ Bindings: AppEnv }>;

export const chat = new Hono<{ Bindings: AppEnv }>();

/** Answers that carry a token are never cached (as the runs' stream start). */
const NO_STORE_STREAM = 'no-cache, no-store, no-transform';

chat.post('/', limitBody(MAX_USE_CHAT_BODY_BYTES), async (c) => {
  rejectWithoutKey(c);
  const body = parse(UseChatBody, await readJson(c));
  const chatId = bodyChatId(body.id);
  const turn = useChatTurn(body);
  const started = await beginTurn(c, chatId, turn, body);
  const { run, caller } = turnRun(c, started.requestId, started.apiKey);
  const first = await run.read(caller, 0);
  if (first.kind !== 'stream') throw unreadable(first);
  // The chat's token reaches a useChat app only this way: its transport hides response headers.
  const data: Record<string, string> = { chatId, requestId: started.requestId };
  if (started.chatToken !== undefined) data.token = started.chatToken;
  const prefix: UiChunk[] = [{ type: 'data-chat', transient: true, data }];
  return new Response(uiStreamOfRun(run, caller, first, started.requestId, prefix), {
    headers: { ...UI_MESSAGE_STREAM_HEADERS, 'Cache-Control': NO_STORE_STREAM, ...turnHeaders(chatId, started) },
  });
});

chat.get('/:id/stream', async (c) => {
  const chatId = pathChatId(c);
  const { auth, presented, client } = await readAuth(c, false);
  const turn = await chatStub(c, chatId).activeTurn(auth);
  if (turn.kind === 'not_found') throw await notFound(c, presented, client);
  // [useChat] 204 means there is nothing to resume (no chat yet, or no turn running).
  if (turn.kind !== 'turn' || !turn.running) return c.body(null, 204);
  const { run, caller } = turnRun(c, turn.requestId, auth.apiKey);
  const first = await run.read(caller, 0);
  if (first.kind === 'refused') throw refused(first.refusal);
  if (first.kind !== 'stream') return c.body(null, 204);
  if (c.req.method === 'HEAD') {
    // Hono drops a HEAD body without cancelling it; cancel it so the run's object closes this reader now.
    await first.body.cancel();
    return c.body(null, 200, { ...UI_MESSAGE_STREAM_HEADERS, 'X-Request-Id': turn.requestId });
  }
  return new Response(uiStreamOfRun(run, caller, first, turn.requestId), {
    headers: { ...UI_MESSAGE_STREAM_HEADERS, 'X-Request-Id': turn.requestId },
  });
});

chat.post('/:id/messages', limitBody(MAX_BODY_BYTES), async (c) => {
  rejectWithoutKey(c);
  const chatId = pathChatId(c, true);
  const body = parse(TurnBody, await readJson(c));
  const turn = ownTurn(body);
  const started = await beginTurn(c, chatId, turn, body);
  const headers = turnHeaders(chatId, started);
  if ((c.req.header('Accept') ?? '').includes('text/event-stream')) {
    const { run, caller } = turnRun(c, started.requestId, started.apiKey);
    const read = await run.read(caller, 0);
    if (read.kind !== 'stream') throw unreadable(read);
    return new Response(read.body, { headers: { ...SSE_HEADERS, ...headers, 'Cache-Control': NO_STORE_STREAM } });
  }
  const base = new URL(c.req.url);
  const link = (path: string) => new URL(`/v1/chat/${chatId}${path}`, base).href;
  const answer: Record<string, unknown> = { chatId };
  if (started.chatToken !== undefined) answer.token = started.chatToken;
  Object.assign(answer, {
    requestId: started.requestId,
    runToken: started.runToken,
    messageId: started.requestId,
    userMessageId: started.userMessageId,
    links: { messages: link('/messages'), events: link('/events'), stop: link('/stop') },
  });
  return c.json(answer, started.chatToken !== undefined ? 201 : 200, { 'Cache-Control': 'no-store' });
});

chat.get('/:id/messages', async (c) => {
  const chatId = pathChatId(c);
  const { auth, presented, client } = await readAuth(c, false);
  const view = await chatStub(c, chatId).view(auth);
  if (!view) throw await notFound(c, presented, client);
  return c.json(view, 200, { 'Cache-Control': 'no-store' });
});

chat.get('/:id/events', async (c) => {
  const chatId = pathChatId(c);
  const afterSeq = lastEventId(c.req.header('Last-Event-ID') ?? c.req.query('lastEventId'));
  // `?token=` as for a run's events: a browser EventSource cannot set headers.
  const { auth, presented, client } = await readAuth(c, true);
  // A client following one turn names it: a turn that started since is not the one its Last-Event-ID counts in.
  const pinned = c.req.query('requestId');
  const turn = await chatStub(c, chatId).activeTurn(auth, pinned);
  if (turn.kind === 'not_found' || turn.kind === 'no_chat') throw await notFound(c, presented, client);
  if (turn.kind === 'none') return c.body(null, 204);
  const { run, caller } = turnRun(c, turn.requestId, auth.apiKey);
  const read = await run.read(caller, afterSeq);
  if (read.kind === 'refused') throw refused(read.refusal);
  // The run gone (its TTL) is as good as ended: nothing can follow.
  if (read.kind !== 'stream') return c.body(null, 204, { 'X-Request-Id': turn.requestId });
  if (c.req.method === 'HEAD') {
    // Hono drops a HEAD body without cancelling it; cancel it so the run's object closes this reader now.
    await read.body.cancel();
    return c.body(null, 200, { ...SSE_HEADERS, 'X-Request-Id': turn.requestId });
  }
  return new Response(read.body, { headers: { ...SSE_HEADERS, 'X-Request-Id': turn.requestId } });
});

chat.post('/:id/stop', async (c) => {
  const chatId = pathChatId(c);
  const { auth, presented, client } = await readAuth(c, false);
  const outcome = await chatStub(c, chatId).stop(auth);
  if (!outcome) throw await notFound(c, presented, client);
  return c.json({ chatId, ...outcome }, outcome.stopped ? 202 : 200);
});

/** Every other method on a known path. */
const ALLOW: Record<string, string> = {
  '/': 'POST, OPTIONS',
  '/:id/stream': 'GET, HEAD, OPTIONS',
  '/:id/messages': 'GET, HEAD, POST, OPTIONS',
  '/:id/events': 'GET, HEAD, OPTIONS',
  '/:id/stop': 'POST, OPTIONS',
};
for (const [path, allow] of Object.entries(ALLOW)) {
  chat.all(path, (c) => otherMethod(c, allow));
}

// ---- helpers --------------------------------------------------------------

/**
 * Check the caller, the chat and the turn, resolve the turn's run as
 * `POST /v1/runs` would (profile, options, human check, limits, budgets),
 * and have the chat start it.
 */
async function beginTurn(
  c: AppContext,
  chatId: string,
  turn: TurnKind,
  body: { agent?: string; options: Record<string, unknown>; ticket?: string; turnstileToken?: string },
): Promise<Extract<StartTurnOutcome, { kind: 'started' }> & { apiKey: boolean }> {
  const config = getConfig(c.env);
  const { auth, presented } = await chatAuthOf(c, config, false, body.ticket);
  // Anonymous callers through the edge are limited; API keys and loopback are not.
  const client = auth.apiKey ? null : clientKey(c.req.header('CF-Connecting-IP'));
  // As for runs: with API_KEYS set, only a key starts anything; a Bearer that is not one is a failed authentication.
  if (config.API_KEYS.length > 0 && !auth.apiKey) {
    if (presented || bearer(c) !== undefined) await authFailed(c, client);
    throw needsKey();
  }
  await limitStarts(c, client);
  const stub = chatStub(c, chatId);
  const prep = await stub.prepare(auth, turn);
  if (prep.kind !== 'new' && prep.kind !== 'existing') throw await turnRefused(c, prep, presented, client);
  const query = prep.kind === 'existing' ? prep.query : turn.trigger === 'submit-message' ? turn.text : '';
  // A chat keeps the profile of its first turn; `agent` counts only then.
  const agent = prep.kind === 'existing' ? prep.profile : body.agent;
  const startBody: StartRunBody = {
    query,
    requestId: newRequestId(),
    messages: prep.kind === 'existing' ? historyFor(config, prep.profile, prep.history, query) : [],
    options: body.options,
  };
  if (agent !== undefined) startBody.agent = agent;
  if (body.ticket !== undefined) startBody.ticket = body.ticket;
  if (body.turnstileToken !== undefined) startBody.turnstileToken = body.turnstileToken;
  // No run token: a turn is always a new run, never an attach.
  const caller: Caller = { apiKey: auth.apiKey };
  const { input, checks } = await resolveStart(c, config, caller, true, client, startBody);
  let create: { profile: string; open: boolean; sub?: string } | undefined;
  if (prep.kind === 'new') {
    const profile = config.profiles.find((p) => p.name === input.profile)!;
    create = { profile: profile.name, open: !auth.apiKey && profile.access === 'public' && !profile.humanCheck };
    if (auth.ticket?.profile === profile.name) create.sub = auth.ticket.sub;
  }
  const outcome = await stub.startTurn({
    chatId,
    auth,
    turn,
    ...(prep.kind === 'existing' ? { version: prep.version } : {}),
    input,
    checks,
    ...(create ? { create } : {}),
    ttlSeconds: config.RUN_TTL_SECONDS,
  });
  if (outcome.kind !== 'started') throw await turnRefused(c, outcome, presented, client);
  return { ...outcome, apiKey: auth.apiKey };
}

/**
 * The conversation a turn's agent gets, within its profile's `maxInputChars`
 * (which counts the query too): a chat never locks itself up by growing past
 * what its profile takes. A query over the limit alone is still refused.
 */
function historyFor(config: Config, profileName: string, history: HistoryMessage[], query: string): HistoryMessage[] {
  const max = config.profiles.find((p) => p.name === profileName)?.maxInputChars;
  return max === undefined ? history : fitHistory(history, max - query.length);
}

/** Why a turn cannot start, as the contract's error. */
async function turnRefused(
  c: AppContext,
  outcome: Exclude<StartTurnOutcome, { kind: 'started' }>,
  presented: boolean,
  client: string | null,
): Promise<ApiError> {
  switch (outcome.kind) {
    case 'not_found':
      return notFound(c, presented, client);
    case 'busy':
      return new ApiError(
        'chat_busy',
        'the chat has a turn running (or just changed); wait for it to end, or stop it with POST /v1/chat/{chatId}/stop',
        undefined,
        undefined,
        outcome.requestId ? { requestId: outcome.requestId } : undefined,
      );
    case 'invalid':
      return new ApiError('invalid_request', outcome.message);
    case 'full':
      return new ApiError('chat_full', `the chat has its ${outcome.max} messages; start a new chat`);
    case 'refused':
      return refused(outcome.refusal);
  }
}

/** The turn from edgestream's own body: `text`, or a regenerate. */
function ownTurn(body: TurnBody): TurnKind {
  if (body.trigger === 'regenerate-message') return regenerate(body.messageId);
  if (body.text === undefined) throw new ApiError('invalid_request', 'text: Required', [{ path: ['text'], message: 'Required' }]);
  if (body.messageId !== undefined && !MESSAGE_ID.test(body.messageId)) {
    throw new ApiError('invalid_request', 'messageId: must match ^[A-Za-z0-9_.:-]{1,128}$');
  }
  const userMessageId = `msg_${newRequestId().slice(4)}`;
  return body.messageId !== undefined
    ? { trigger: 'submit-message', text: body.text, userMessageId, replaces: body.messageId }
    : { trigger: 'submit-message', text: body.text, userMessageId };
}

async function readAuth(c: AppContext, allowQueryToken: boolean): Promise<{ auth: ChatAuth; presented: boolean; client: string | null }> {
  const config = getConfig(c.env);
  const { auth, presented } = await chatAuthOf(c, config, allowQueryToken);
  return { auth, presented, client: auth.apiKey ? null : clientKey(c.req.header('CF-Connecting-IP')) };
}

/** With API_KEYS set only a key starts anything: answered before the body is read, as `POST /v1/runs` does. */
function rejectWithoutKey(c: AppContext): void {
  const config = getConfig(c.env);
  if (config.API_KEYS.length === 0) return;
  if (!c.req.header('Authorization')) throw needsKey();
}

/** A chat that is not there or that the credential does not open: one answer for both. */
async function notFound(c: AppContext, presented: boolean, client: string | null): Promise<ApiError> {
  if (presented) await authFailed(c, client);
  return new ApiError('chat_not_found', 'no such chat, or the credential does not open it');
}

/** A turn's run, and how the Worker reads it for a caller the chat has let in. */
function turnRun(c: AppContext, requestId: string, apiKey: boolean) {
  const config = getConfig(c.env);
  const anonymous = !apiKey && clientKey(c.req.header('CF-Connecting-IP')) !== null;
  // The chat checked the caller; the run is read as the chat reads it, with the reader limit of anonymous callers.
  const caller: Caller = { apiKey: true };
  if (anonymous) caller.maxReaders = config.LIMIT_READERS_PER_RUN;
  return { run: runStub(c.env, requestId), caller };
}

function chatStub(c: AppContext, chatId: string) {
  return c.env.CHATS.get(c.env.CHATS.idFromName(chatId));
}

function turnHeaders(chatId: string, started: Extract<StartTurnOutcome, { kind: 'started' }>): Record<string, string> {
  const headers: Record<string, string> = { 'X-Chat-Id': chatId, 'X-Request-Id': started.requestId, 'X-Run-Token': started.runToken };
  if (started.chatToken !== undefined) headers['X-Chat-Token'] = started.chatToken;
  return headers;
}

/** A new turn's run that cannot be read: the reader limit (429); anything else would be a bug. */
function unreadable(read: Exclude<ReadOutcome, { kind: 'stream' }>): ApiError {
  if (read.kind === 'refused') return refused(read.refusal);
  return new ApiError('internal', "the turn's run could not be read; read it again with GET /v1/chat/{chatId}/events");
}

function parse<S extends z.ZodMiniType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new ApiError('invalid_request', describeIssues(issues), issues);
  }
  return parsed.data;
}

function bodyChatId(id: string): string {
  if (!CHAT_ID.test(id)) {
    const message = 'must be 16..128 characters of A-Z, a-z, 0-9, _ and - (useChat makes such ids)';
    throw new ApiError('invalid_request', `id: ${message}`, [{ path: ['id'], message }]);
  }
  return id;
}

/** The chat id of the path. One that cannot exist is not found (or, where a turn would create it, invalid). */
function pathChatId(c: AppContext, creating = false): string {
  const id = c.req.param('id') ?? '';
  if (CHAT_ID.test(id)) return id;
  if (creating) bodyChatId(id);
  throw new ApiError('chat_not_found', 'no such chat, or the credential does not open it');
}

function limitBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError('payload_too_large', `the request body is larger than ${maxSize} bytes`);
    },
  });
}
