// Chats through the Worker in workerd: edgestream's own endpoints and the
// ones useChat's DefaultChatTransport calls, each turn an ordinary run.
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { DemoOptions, demoScript } from '../../src/agents/demo/demo';
import { demoText } from '../e2e/demo-reference';
import { call, readSse, text } from './helpers';
import {
  QUICK,
  SLOW,
  type Vars,
  callWith,
  chatStub,
  errorOf,
  json,
  messagesOf,
  newChatId,
  ownTurn,
  runInput,
  settled,
  textOf,
  uiChunks,
  uiMessage,
  useChatBody,
} from './chat-helpers';

/** The demo agent's deltas up to the failure `failAfter` asks for (its answer's first pieces). */
function textBeforeFailure(query: string, options: Record<string, unknown>): string {
  let text = '';
  try {
    for (const event of demoScript(query, DemoOptions.parse(options))) if (event.type === 'delta') text += event.text;
  } catch {
    // the failure asked for: what came before it is the stored answer
  }
  return text;
}

describe('a chat through edgestream endpoints', () => {
  it('creates the chat with its first message, streams the turn as the run does, and keeps the conversation', async () => {
    const chatId = newChatId();
    const res = await call(`/v1/chat/${chatId}/messages`, json({ text: 'first question', options: QUICK }));
    expect(res.status).toBe(201);
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    const turn = (await res.json()) as Record<string, any>;
    expect(turn).toMatchObject({ chatId, messageId: turn.requestId });
    expect(turn.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(turn.links.events).toBe(`https://edgestream.test/v1/chat/${chatId}/events`);

    const events = await call(`/v1/chat/${chatId}/events`);
    expect(events.status).toBe(200);
    expect(events.headers.get('X-Request-Id')).toBe(turn.requestId);
    const read = await readSse(events);
    expect(text(read.events)).toBe(demoText('first question', QUICK));
    expect(read.events.at(-1)!.data).toMatchObject({ type: 'done', state: 'completed', requestId: turn.requestId });

    const view = await settled(chatId);
    expect(view.agent).toBe('demo');
    expect(view.messages.map((m) => [m.role, textOf(m)])).toEqual([
      ['user', 'first question'],
      ['assistant', demoText('first question', QUICK)],
    ]);
    expect(view.messages[1]).toMatchObject({ id: turn.requestId, metadata: { requestId: turn.requestId, state: 'completed' } });

    // The second turn gets the conversation so far; it creates nothing (200, no new token).
    const second = await call(`/v1/chat/${chatId}/messages`, json({ text: 'second question', options: QUICK }));
    expect(second.status).toBe(200);
    const next = (await second.json()) as Record<string, any>;
    expect(next.token).toBeUndefined();
    expect(await runInput(next.requestId)).toMatchObject({
      query: 'second question',
      profile: 'demo',
      messages: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: demoText('first question', QUICK) },
      ],
    });
    const after = await settled(chatId);
    expect(after.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });

  it('resumes the turn with Last-Event-ID, and answers 204 once nothing can follow', async () => {
    const chatId = newChatId();
    await ownTurn(chatId, { text: 'resume me', options: QUICK });
    const all = await readSse(await call(`/v1/chat/${chatId}/events`));
    const last = Number(all.events.at(-1)!.id);
    const rest = await readSse(await call(`/v1/chat/${chatId}/events`, { headers: { 'Last-Event-ID': '3' } }));
    expect(rest.events.map((e) => Number(e.id))).toEqual(all.events.map((e) => Number(e.id)).filter((s) => s > 3));
    const none = await call(`/v1/chat/${chatId}/events`, { headers: { 'Last-Event-ID': String(last) } });
    expect(none.status).toBe(204);
    const bad = await call(`/v1/chat/${chatId}/events`, { headers: { 'Last-Event-ID': 'x' } });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('invalid_last_event_id');
  });

  it("reads an earlier turn named by ?requestId=, and answers 204 for a turn that is not the chat's", async () => {
    const chatId = newChatId();
    const first = await ownTurn(chatId, { text: 'turn one', options: QUICK });
    await settled(chatId);
    await ownTurn(chatId, { text: 'turn two', options: QUICK });
    await settled(chatId);
    const pinned = await call(`/v1/chat/${chatId}/events?requestId=${first.requestId}`);
    expect(pinned.headers.get('X-Request-Id')).toBe(first.requestId);
    expect(text((await readSse(pinned)).events)).toBe(demoText('turn one', QUICK));
    const latest = await call(`/v1/chat/${chatId}/events`);
    expect(text((await readSse(latest)).events)).toBe(demoText('turn two', QUICK));
    expect((await call(`/v1/chat/${chatId}/events?requestId=run_not_of_this_chat`)).status).toBe(204);
  });

  it('streams a turn from its POST with Accept: text/event-stream, with the chat and run headers', async () => {
    const chatId = newChatId();
    const res = await call(`/v1/chat/${chatId}/messages`, json({ text: 'stream it', options: QUICK }, { Accept: 'text/event-stream' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toContain('text/event-stream');
    expect(res.headers.get('X-Chat-Id')).toBe(chatId);
    expect(res.headers.get('X-Chat-Token')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.headers.get('Cache-Control')).toBe('no-cache, no-store, no-transform');
    const requestId = res.headers.get('X-Request-Id')!;
    const read = await readSse(res);
    expect(text(read.events)).toBe(demoText('stream it', QUICK));
    // The run token of the turn opens the run itself.
    const status = await call(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${res.headers.get('X-Run-Token')}` } });
    expect(((await status.json()) as { state: string }).state).toBe('completed');
  });

  it('refuses a second turn while one runs (409 chat_busy), and stops the running one (the run ends cancelled)', async () => {
    const chatId = newChatId();
    const turn = await ownTurn(chatId, { text: 'a long one', options: SLOW });
    const busy = await call(`/v1/chat/${chatId}/messages`, json({ text: 'too soon', options: QUICK }));
    expect(busy.status).toBe(409);
    expect(await errorOf(busy)).toMatchObject({ code: 'chat_busy', requestId: turn.requestId });

    const stop = await call(`/v1/chat/${chatId}/stop`, { method: 'POST' });
    expect(stop.status).toBe(202);
    expect(await stop.json()).toEqual({ chatId, stopped: true, requestId: turn.requestId, state: 'cancelled' });
    const run = await call(`/v1/runs/${turn.requestId}`, { headers: { Authorization: `Bearer ${turn.runToken}` } });
    expect(((await run.json()) as { state: string }).state).toBe('cancelled');
    const again = await call(`/v1/chat/${chatId}/stop`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { stopped: boolean }).stopped).toBe(false);

    const view = await messagesOf(chatId);
    expect(view.activeTurn).toBeNull();
    expect(view.messages[1]!.metadata).toMatchObject({ state: 'cancelled' });
    // A turn may follow at once.
    expect((await call(`/v1/chat/${chatId}/messages`, json({ text: 'now', options: QUICK }))).status).toBe(200);
  });

  it('regenerates the last answer: the same question again, the old answer replaced', async () => {
    const chatId = newChatId();
    const first = await ownTurn(chatId, { text: 'answer twice', options: QUICK });
    await settled(chatId);
    const again = await ownTurn(chatId, { trigger: 'regenerate-message', options: { tokens: 7, delayMs: 0 } });
    expect(again.requestId).not.toBe(first.requestId);
    expect(await runInput(again.requestId)).toMatchObject({ query: 'answer twice', messages: [] });
    const view = await settled(chatId);
    expect(view.messages.map((m) => [m.role, m.id])).toEqual([
      ['user', first.userMessageId],
      ['assistant', again.requestId],
    ]);
    expect(textOf(view.messages[1]!)).toBe(demoText('answer twice', { tokens: 7, delayMs: 0 }));
  });

  it('regenerates an earlier answer: its question again, what followed it dropped', async () => {
    const chatId = newChatId();
    const first = await ownTurn(chatId, { text: 'one', options: QUICK });
    await settled(chatId);
    await ownTurn(chatId, { text: 'two', options: QUICK });
    await settled(chatId);
    const again = await ownTurn(chatId, { trigger: 'regenerate-message', messageId: first.requestId, options: QUICK });
    expect(await runInput(again.requestId)).toMatchObject({ query: 'one', messages: [] });
    const view = await settled(chatId);
    expect(view.messages.map((m) => [m.role, m.id])).toEqual([
      ['user', first.userMessageId],
      ['assistant', again.requestId],
    ]);
    // A user message's id asks that message again.
    const byUser = await ownTurn(chatId, { trigger: 'regenerate-message', messageId: first.userMessageId, options: QUICK });
    expect(await runInput(byUser.requestId)).toMatchObject({ query: 'one' });
    expect((await settled(chatId)).messages.map((m) => m.id)).toEqual([first.userMessageId, byUser.requestId]);
  });

  it('refuses to regenerate a message the chat does not have, and keeps the chat as it was', async () => {
    const chatId = newChatId();
    const first = await ownTurn(chatId, { text: 'keep me', options: QUICK });
    const before = await settled(chatId);
    for (const [path, body] of [
      [`/v1/chat/${chatId}/messages`, { trigger: 'regenerate-message', messageId: 'no-such-message' }],
      ['/v1/chat', { id: chatId, messages: [], trigger: 'regenerate-message', messageId: 'no-such-message' }],
      [`/v1/chat/${chatId}/messages`, { trigger: 'regenerate-message', messageId: 'not an id!' }],
    ] as const) {
      const res = await call(path, json(body));
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'invalid_request',
        message: expect.stringContaining('messageId'),
      });
    }
    expect(await messagesOf(chatId)).toEqual(before);
    expect(before.messages[1]!.id).toBe(first.requestId);
  });

  it('replaces an edited user message and everything after it', async () => {
    const chatId = newChatId();
    const first = await ownTurn(chatId, { text: 'one', options: QUICK });
    await settled(chatId);
    await ownTurn(chatId, { text: 'two', options: QUICK });
    await settled(chatId);
    const edited = await ownTurn(chatId, { text: 'one, edited', messageId: first.userMessageId, options: QUICK });
    const view = await settled(chatId);
    expect(view.messages.map((m) => textOf(m))).toEqual(['one, edited', demoText('one, edited', QUICK)]);
    expect(await runInput(edited.requestId)).toMatchObject({ messages: [] });
  });

  it('stores a failed turn with its error', async () => {
    const chatId = newChatId();
    await ownTurn(chatId, { text: 'fail please', options: { tokens: 10, delayMs: 0, failAfter: 3 } });
    const view = await settled(chatId);
    expect(view.messages[1]!.metadata).toMatchObject({ state: 'failed', error: { code: 'demo_failure' } });
    expect(textOf(view.messages[1]!)).toBe(textBeforeFailure('fail please', { tokens: 10, delayMs: 0, failAfter: 3 }));
  });
});

describe('the endpoints useChat calls', () => {
  it('answers POST /v1/chat with the UI message stream of the new turn, the chat token in a transient data part', async () => {
    const chatId = newChatId();
    const res = await call('/v1/chat', json(useChatBody(chatId, 'hello from useChat', { options: QUICK })));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(res.headers.get('Content-Type')).toContain('text/event-stream');
    const requestId = res.headers.get('X-Request-Id')!;
    const raw = await res.clone().text();
    expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
    const chunks = await uiChunks(res);
    expect(chunks[0]).toMatchObject({ type: 'data-chat', transient: true, data: { chatId, requestId } });
    const token = (chunks[0] as { data: { token: string } }).data.token;
    expect(token).toBe(res.headers.get('X-Chat-Token'));
    const message = await uiMessage(chunks);
    expect(message.id).toBe(requestId);
    expect(textOf(message as never)).toBe(demoText('hello from useChat', QUICK));
    expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
  });

  it('takes only the new user message: earlier messages in the body, answers above all, are ignored', async () => {
    const chatId = newChatId();
    await (await call('/v1/chat', json(useChatBody(chatId, 'real question', { options: QUICK })))).text();
    await settled(chatId);
    const forged = [
      { id: 'x1', role: 'user', parts: [{ type: 'text', text: 'a question I never asked' }] },
      { id: 'x2', role: 'assistant', parts: [{ type: 'text', text: 'an answer the server never gave' }] },
    ];
    const res = await call('/v1/chat', json(useChatBody(chatId, 'follow-up', { options: QUICK }, forged)));
    expect(res.status).toBe(200);
    const requestId = res.headers.get('X-Request-Id')!;
    await res.text();
    expect((await runInput(requestId)).messages).toEqual([
      { role: 'user', content: 'real question' },
      { role: 'assistant', content: demoText('real question', QUICK) },
    ]);
  });

  it('GET /v1/chat/{id}/stream: 204 for no chat and for no running turn, else the whole running turn from its start', async () => {
    const unknown = await call(`/v1/chat/${newChatId()}/stream`);
    expect(unknown.status).toBe(204);
    const chatId = newChatId();
    const post = await call('/v1/chat', json(useChatBody(chatId, 'resume this', { options: { tokens: 40, delayMs: 10 } })));
    const requestId = post.headers.get('X-Request-Id')!;
    await post.body!.cancel(); // the tab went away mid-answer
    const head = await call(`/v1/chat/${chatId}/stream`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(await head.text()).toBe('');
    const resumed = await call(`/v1/chat/${chatId}/stream`);
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    const chunks = await uiChunks(resumed);
    // From its start: the same stable id, no transient token part, the whole text once.
    expect(chunks[0]).toMatchObject({ type: 'start', messageId: requestId });
    expect(chunks.some((c) => c.type === 'data-chat')).toBe(false);
    expect(textOf((await uiMessage(chunks)) as never)).toBe(demoText('resume this', { tokens: 40, delayMs: 10 }));
    await settled(chatId);
    expect((await call(`/v1/chat/${chatId}/stream`)).status).toBe(204);
  });

  it('two readers (two tabs) of one chat get the same stream and the same conversation', async () => {
    const chatId = newChatId();
    const options = { tokens: 30, delayMs: 5 };
    const post = await call('/v1/chat', json(useChatBody(chatId, 'two tabs', { options })));
    const [a, b] = await Promise.all([call(`/v1/chat/${chatId}/stream`), call(`/v1/chat/${chatId}/stream`)]);
    const [ca, cb, cp] = await Promise.all([uiChunks(a), uiChunks(b), uiChunks(post)]);
    expect(ca).toEqual(cb);
    expect(cp.slice(1)).toEqual(ca); // the POST's stream: the same, after its transient part
    const [va, vb] = await Promise.all([settled(chatId), messagesOf(chatId)]);
    expect(va).toEqual(vb);
    expect(va.messages.map((m) => textOf(m))).toEqual(['two tabs', demoText('two tabs', options)]);
  });

  it('regenerate-message replaces the last answer; a failing turn streams its error', async () => {
    const chatId = newChatId();
    await (await call('/v1/chat', json(useChatBody(chatId, 'again please', { options: QUICK })))).text();
    await settled(chatId);
    const regen = await call(
      '/v1/chat',
      json({ id: chatId, messages: [], trigger: 'regenerate-message', options: { tokens: 10, delayMs: 0, failAfter: 2 } }),
    );
    expect(regen.status).toBe(200);
    const chunks = await uiChunks(regen);
    expect(chunks.find((c) => c.type === 'error')).toEqual({
      type: 'error',
      errorText: 'demo agent failed after 2 deltas, as asked by failAfter',
    });
    expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'error' });
    const view = await settled(chatId);
    expect(view.messages).toHaveLength(2);
    expect(view.messages[1]!.metadata).toMatchObject({ state: 'failed', error: { code: 'demo_failure' } });
  });
});

describe('bad input gets a documented JSON error, never a 500', () => {
  const cases: [string, string, RequestInit, number, string][] = [
    ['not JSON', '/v1/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' }, 400, 'invalid_json'],
    ['no JSON content type', '/v1/chat', { method: 'POST', body: '{}' }, 415, 'unsupported_media_type'],
    ['no id', '/v1/chat', json({ messages: [], trigger: 'submit-message' }), 400, 'invalid_request'],
    ['a short id', '/v1/chat', json(useChatBody('short', 'hi')), 400, 'invalid_request'],
    ['an unknown trigger', '/v1/chat', json({ ...useChatBody(newChatId(), 'hi'), trigger: 'resume-stream' }), 400, 'invalid_request'],
    ['no messages', '/v1/chat', json({ id: newChatId(), messages: [], trigger: 'submit-message' }), 400, 'invalid_request'],
    [
      'a last message that is not the user',
      '/v1/chat',
      json({
        id: newChatId(),
        trigger: 'submit-message',
        messages: [{ id: 'a', role: 'assistant', parts: [{ type: 'text', text: 'x' }] }],
      }),
      400,
      'invalid_request',
    ],
    [
      'a user message without text',
      '/v1/chat',
      json({ id: newChatId(), trigger: 'submit-message', messages: [{ id: 'a', role: 'user', parts: [{ type: 'file', url: 'x' }] }] }),
      400,
      'invalid_request',
    ],
    ['an unknown agent', '/v1/chat', json(useChatBody(newChatId(), 'hi', { agent: 'nope' })), 400, 'unknown_agent'],
    [
      'an option the profile does not allow',
      '/v1/chat',
      json(useChatBody(newChatId(), 'hi', { options: { color: 1 } })),
      400,
      'invalid_request',
    ],
    [
      'regenerating in a chat that does not exist',
      '/v1/chat',
      json({ id: newChatId(), messages: [], trigger: 'regenerate-message' }),
      404,
      'chat_not_found',
    ],
    ['an own turn without text', `/v1/chat/${newChatId()}/messages`, json({}), 400, 'invalid_request'],
    ['an own turn for a short id', '/v1/chat/short/messages', json({ text: 'hi' }), 400, 'invalid_request'],
    [
      'editing a message the chat does not have',
      `/v1/chat/${newChatId()}/messages`,
      json({ text: 'x', messageId: 'nope' }),
      404,
      'chat_not_found',
    ],
    ['messages of no chat', `/v1/chat/${newChatId()}/messages`, {}, 404, 'chat_not_found'],
    ['events of no chat', `/v1/chat/${newChatId()}/events`, {}, 404, 'chat_not_found'],
    ['stopping no chat', `/v1/chat/${newChatId()}/stop`, { method: 'POST' }, 404, 'chat_not_found'],
    ['a wrong method', `/v1/chat/${newChatId()}/stop`, { method: 'GET' }, 405, 'method_not_allowed'],
    ['a body over 1 MiB', '/v1/chat', json(useChatBody(newChatId(), 'x'.repeat(1024 * 1024))), 413, 'payload_too_large'],
  ];
  for (const [what, path, init, status, code] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const res = await call(path, init);
      expect(res.status).toBe(status);
      expect(res.headers.get('Content-Type')).toContain('application/json');
      expect((await errorOf(res)).code).toBe(code);
    });
  }

  it('an edit naming a message that is not in an existing chat is 400 invalid_request, and nothing changes', async () => {
    const chatId = newChatId();
    await ownTurn(chatId, { text: 'kept', options: QUICK });
    await settled(chatId);
    const res = await call(`/v1/chat/${chatId}/messages`, json({ text: 'x', messageId: 'not-there' }));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_request');
    expect((await messagesOf(chatId)).messages).toHaveLength(2);
  });

  it('a user message id the chat already has is 400 invalid_request', async () => {
    const chatId = newChatId();
    const body = useChatBody(chatId, 'once', { options: QUICK });
    await (await call('/v1/chat', json(body))).text();
    await settled(chatId);
    const res = await call('/v1/chat', json(body));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain('already has a message');
  });
});

describe('edits and concurrent sends through POST /v1/chat', () => {
  const user = (id: string, text: string) => ({ id, role: 'user', parts: [{ type: 'text', text }] });
  /** A chat with user messages u1 and u2 (ids as useChat made them) and their answers. */
  async function twoTurns(vars?: Vars, headers: Record<string, string> = {}) {
    const chatId = newChatId('edit');
    for (const [id, text] of [
      ['u1', 'one'],
      ['u2', 'two'],
    ] as const) {
      const res = await callWith(
        vars,
        '/v1/chat',
        json({ id: chatId, messages: [user(id, text)], trigger: 'submit-message', options: QUICK }, headers),
      );
      expect(res.status).toBe(200);
      await res.text();
      await settled(chatId, {}, vars);
    }
    return chatId;
  }

  it('a turn that sends only its new message (prepareSendMessagesRequest) gets the whole stored conversation', async () => {
    const chatId = await twoTurns();
    const before = await messagesOf(chatId);
    const res = await call('/v1/chat', json({ id: chatId, messages: [user('u3', 'three')], trigger: 'submit-message', options: QUICK }));
    expect(res.status).toBe(200);
    const requestId = res.headers.get('X-Request-Id')!;
    await res.text();
    expect(await runInput(requestId)).toEqual(
      expect.objectContaining({
        query: 'three',
        messages: [
          { role: 'user', content: 'one' },
          { role: 'assistant', content: textOf(before.messages[1]!) },
          { role: 'user', content: 'two' },
          { role: 'assistant', content: textOf(before.messages[3]!) },
        ],
      }),
    );
  });

  it("useChat's regenerate({ messageId }) of the first answer asks its question again and drops what followed", async () => {
    const chatId = await twoTurns();
    const before = await messagesOf(chatId);
    const res = await call(
      '/v1/chat',
      json({
        id: chatId,
        messages: before.messages.slice(0, 1),
        trigger: 'regenerate-message',
        messageId: before.messages[1]!.id,
        options: QUICK,
      }),
    );
    expect(res.status).toBe(200);
    const requestId = res.headers.get('X-Request-Id')!;
    await res.text();
    expect(await runInput(requestId)).toMatchObject({ query: 'one', messages: [] });
    expect((await settled(chatId)).messages.map((m) => [m.id, textOf(m)])).toEqual([
      ['u1', 'one'],
      [requestId, demoText('one', QUICK)],
    ]);
  });

  it("useChat's edit (sendMessage with messageId) replaces that message and what followed, keeping its id", async () => {
    const chatId = await twoTurns();
    const before = await messagesOf(chatId);
    // What DefaultChatTransport posts: the conversation up to the edited message, which keeps its id.
    const body = {
      id: chatId,
      messages: [...before.messages.slice(0, 2), user('u2', 'two edited')],
      trigger: 'submit-message',
      messageId: 'u2',
      options: QUICK,
    };
    const res = await call('/v1/chat', json(body));
    expect(res.status).toBe(200);
    const requestId = res.headers.get('X-Request-Id')!;
    await res.text();
    const view = await settled(chatId);
    expect(view.messages.map((m) => [m.id, textOf(m)])).toEqual([
      ['u1', 'one'],
      [before.messages[1]!.id, demoText('one', QUICK)],
      ['u2', 'two edited'],
      [requestId, demoText('two edited', QUICK)],
    ]);
    expect((await runInput(requestId)).messages).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: demoText('one', QUICK) },
    ]);
  });

  it('an edit whose new message takes the id of one still kept is 400 invalid_request; no run is left holding a slot', async () => {
    const vars: Vars = { LIMIT_RUNNING_PER_CLIENT: '1' };
    const client = { 'CF-Connecting-IP': '198.51.100.91' };
    const chatId = await twoTurns(vars, client);
    const body = { id: chatId, messages: [user('u1', 'two edited')], trigger: 'submit-message', messageId: 'u2', options: SLOW };
    const res = await callWith(vars, '/v1/chat', json(body, client));
    expect(res.status).toBe(400);
    expect(res.headers.get('Content-Type')).toContain('application/json');
    expect(await errorOf(res)).toMatchObject({ code: 'invalid_request' });
    const view = await messagesOf(chatId, {}, vars);
    expect(view.activeTurn).toBeNull();
    expect(view.messages.map((m) => textOf(m))).toEqual(['one', demoText('one', QUICK), 'two', demoText('two', QUICK)]);
    // The client's one running slot is free: no started run was left behind.
    const next = await callWith(
      vars,
      '/v1/chat',
      json({ id: chatId, messages: [user('u3', 'three')], trigger: 'submit-message', options: QUICK }, client),
    );
    expect(next.status).toBe(200);
    await next.text();
  });

  it('two sends at once: one turn starts, the other is 409 chat_busy (an existing chat and a new one)', async () => {
    for (const chatId of [await twoTurns(), newChatId('race')]) {
      const send = (id: string) =>
        call('/v1/chat', json({ id: chatId, messages: [user(id, `race ${id}`)], trigger: 'submit-message', options: SLOW }));
      const answers = await Promise.all([send('r1'), send('r2')]);
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409]);
      const busy = answers.find((r) => r.status === 409)!;
      const started = answers.find((r) => r.status === 200)!;
      expect(await errorOf(busy)).toMatchObject({ code: 'chat_busy', requestId: started.headers.get('X-Request-Id') });
      await started.body!.cancel();
      expect((await call(`/v1/chat/${chatId}/stop`, { method: 'POST' })).status).toBe(202);
    }
  });

  it('a turn whose storage fails after its run started cancels that run, so it holds no slot', async () => {
    const vars: Vars = { LIMIT_RUNNING_PER_CLIENT: '1' };
    const client = { 'CF-Connecting-IP': '198.51.100.92' };
    const chatId = await twoTurns(vars, client);
    // Storage that refuses the new user message (a full disk, say): only the step after run.start fails.
    await runInDurableObject(chatStub(chatId), (_o, state) => {
      state.storage.sql.exec("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    });
    const body = { id: chatId, messages: [user('u3', 'three')], trigger: 'submit-message', options: SLOW };
    const res = await callWith(vars, '/v1/chat', json(body, client));
    // The contract's answer to a storage failure, with nothing internal in it.
    expect(res.status).toBe(500);
    expect(await errorOf(res)).toEqual({ code: 'internal', message: 'internal error; please retry' });
    expect((await messagesOf(chatId, {}, vars)).activeTurn).toBeNull();
    // The run it had started was cancelled: the client's one running slot is free for a run of its own.
    const run = await callWith(vars, '/v1/runs', json({ query: 'slot free?', options: SLOW }, client));
    expect(run.status).toBe(201);
    const started = (await run.json()) as { requestId: string; token: string };
    await callWith(vars, `/v1/runs/${started.requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${started.token}` } });
  });
});

describe('a chat on a profile with maxInputChars', () => {
  const vars: Vars = { PROFILES: JSON.stringify({ short: { agent: 'demo', maxInputChars: 300, clientOptions: ['tokens', 'delayMs'] } }) };
  const turn = (chatId: string, text: string) =>
    ownTurn(chatId, { text, agent: 'short', options: QUICK }, {}, vars).then(async (t) => {
      await settled(chatId, {}, vars);
      return t;
    });

  it("keeps every turn within the profile's limit: an earlier message too long for what is left is skipped, older ones still go", async () => {
    const chatId = newChatId('short');
    expect(demoText('one', QUICK).length).toBeGreaterThan(300); // each answer alone is over the limit
    await turn(chatId, 'one');
    const second = await turn(chatId, 'two');
    expect((await runInput(second.requestId)).messages).toEqual([{ role: 'user', content: 'one' }]);
    const third = await turn(chatId, 'three');
    expect((await runInput(third.requestId)).messages).toEqual([
      { role: 'user', content: 'one' },
      { role: 'user', content: 'two' },
    ]);
    const view = await messagesOf(chatId, {}, vars);
    expect(view.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    expect(view.messages.every((m) => m.role === 'user' || m.metadata?.state === 'completed')).toBe(true);
  });

  it('still refuses a message that alone is over the limit (400 invalid_request), and the chat goes on', async () => {
    const chatId = newChatId('short');
    await turn(chatId, 'one');
    const res = await callWith(vars, `/v1/chat/${chatId}/messages`, json({ text: 'x'.repeat(301), options: QUICK }));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_request');
    await turn(chatId, 'two');
    expect((await messagesOf(chatId, {}, vars)).messages).toHaveLength(4);
  });
});

describe('a chat from another origin (ALLOWED_ORIGINS)', () => {
  it('exposes X-Chat-Token and X-Chat-Id, beside the run headers, so a cross-origin page can read the token', async () => {
    const origin = 'https://app.example';
    const vars: Vars = { ALLOWED_ORIGINS: origin };
    const chatId = newChatId('cors');
    const res = await callWith(
      vars,
      `/v1/chat/${chatId}/messages`,
      json({ text: 'from elsewhere', options: QUICK }, { Origin: origin, Accept: 'text/event-stream' }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(origin);
    const exposed = (res.headers.get('Access-Control-Expose-Headers') ?? '').split(/,\s*/).map((h) => h.toLowerCase());
    for (const header of ['X-Chat-Token', 'X-Chat-Id', 'X-Request-Id', 'X-Run-Token', 'Retry-After']) {
      expect(exposed, header).toContain(header.toLowerCase());
    }
    expect(res.headers.get('X-Chat-Token')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await res.text();
  });
});
