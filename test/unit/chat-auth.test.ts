// Who may read and continue a chat: its token, an API key, the ticket of the
// user who started it, or (only for an open chat: anonymous, public profile,
// no human check) the chat id itself.
import { describe, expect, it } from 'vitest';
import { signTicket } from '../../src/human/ticket';
import { readSse } from './helpers';
import { QUICK, callWith, errorOf, json, messagesOf, newChatId, ownTurn, settled, useChatBody, type Vars } from './chat-helpers';

const KEYED: Vars = { API_KEYS: 'chat-test-key' };
const KEY = { Authorization: 'Bearer chat-test-key' };
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Every way to read or continue a chat, as `headers` would call it. */
function everyAccess(chatId: string, headers: Record<string, string>, vars?: Vars) {
  return {
    messages: () => callWith(vars, `/v1/chat/${chatId}/messages`, { headers }),
    events: () => callWith(vars, `/v1/chat/${chatId}/events`, { headers }),
    stream: () => callWith(vars, `/v1/chat/${chatId}/stream`, { headers }),
    stop: () => callWith(vars, `/v1/chat/${chatId}/stop`, { method: 'POST', headers }),
    continueOwn: () => callWith(vars, `/v1/chat/${chatId}/messages`, json({ text: 'may I?', options: QUICK }, headers)),
    continueUseChat: () => callWith(vars, '/v1/chat', json(useChatBody(chatId, 'may I?', { options: QUICK }), headers)),
  };
}

async function expectClosed(access: ReturnType<typeof everyAccess>, continueStatus = 404) {
  for (const [name, go] of Object.entries(access)) {
    const res = await go();
    const expected = name.startsWith('continue') ? continueStatus : 404;
    expect(res.status, name).toBe(expected);
    expect((await errorOf(res)).code, name).toBe(expected === 401 ? 'unauthorized' : 'chat_not_found');
  }
}

describe('a chat started with an API key', () => {
  it('cannot be read or continued without its token or a key; its token and any key open it', async () => {
    const chatId = newChatId('keyed');
    const turn = await ownTurn(chatId, { text: 'private', options: QUICK }, KEY, KEYED);
    expect(turn.token).toBeDefined();
    await settled(chatId, KEY, KEYED);

    // Nothing, a wrong token, or a run token: not found (the answer does not say the chat exists).
    await expectClosed(everyAccess(chatId, {}, KEYED), 401);
    await expectClosed(everyAccess(chatId, bearer('not-the-token'), KEYED), 401);
    await expectClosed(everyAccess(chatId, bearer(turn.runToken), KEYED), 401);

    // Its token reads it; continuing still needs a key under API_KEYS, as starting any run does.
    const withToken = everyAccess(chatId, bearer(turn.token!), KEYED);
    expect((await withToken.messages()).status).toBe(200);
    expect((await withToken.events()).status).toBe(200);
    expect((await withToken.stream()).status).toBe(204);
    expect((await withToken.stop()).status).toBe(200);
    expect((await withToken.continueOwn()).status).toBe(401);
    expect((await callWith(KEYED, `/v1/chat/${chatId}/messages`, json({ text: 'next', options: QUICK }, KEY))).status).toBe(200);
  });

  it('is not opened by its id alone even without API_KEYS', async () => {
    const chatId = newChatId('keyed');
    // API_KEYS set when it is made: a key-made chat is never open, whatever the deployment does later.
    await ownTurn(chatId, { text: 'private', options: QUICK }, KEY, KEYED);
    await settled(chatId, KEY, KEYED);
    await expectClosed(everyAccess(chatId, {}));
  });
});

describe('an open chat (anonymous, public profile, no human check)', () => {
  it('is read and continued with its id alone, which useChat makes unguessable', async () => {
    const chatId = newChatId('open');
    const turn = await ownTurn(chatId, { text: 'public', options: QUICK });
    await settled(chatId);
    const anyone = everyAccess(chatId, {});
    expect((await anyone.messages()).status).toBe(200);
    expect((await readSse(await anyone.events())).events.at(-1)!.data.type).toBe('done');
    expect((await anyone.continueOwn()).status).toBe(200);
    await settled(chatId);
    // Its token works too (a client may keep it either way).
    expect((await messagesOf(chatId, bearer(turn.token!))).messages).toHaveLength(4);
  });
});

describe('a credential that opens nothing', () => {
  it('is refused on an open chat too: an old token never writes into a chat re-created under its id', async () => {
    // The owner's chat expired; someone re-created its id as an open chat. The owner's client still holds a token.
    const owners = await ownTurn(newChatId('owner'), { text: 'mine', options: QUICK });
    const chatId = newChatId('open');
    await ownTurn(chatId, { text: 'not yours', options: QUICK });
    await settled(chatId);
    await expectClosed(everyAccess(chatId, bearer(owners.token!)));
    await expectClosed(everyAccess(chatId, bearer('not-a-token-at-all')));
    // Nothing was added by the refused turns.
    expect((await messagesOf(chatId)).messages).toHaveLength(2);
  });

  it('does not create a chat: a stale token for an id with no chat is not found', async () => {
    const stale = await ownTurn(newChatId('stale'), { text: 'old', options: QUICK });
    const chatId = newChatId('gone');
    const res = await callWith(undefined, `/v1/chat/${chatId}/messages`, json({ text: 'hi', options: QUICK }, bearer(stale.token!)));
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('chat_not_found');
    const viaUseChat = await callWith(undefined, '/v1/chat', json(useChatBody(chatId, 'hi', { options: QUICK }), bearer(stale.token!)));
    expect(viaUseChat.status).toBe(404);
    expect((await callWith(undefined, `/v1/chat/${chatId}/messages`, {})).status).toBe(404);
  });

  it('on an open chat counts as a failed authentication: past the limit, 429 rate_limited', async () => {
    const chatId = newChatId('open');
    await ownTurn(chatId, { text: 'public', options: QUICK });
    await settled(chatId);
    const headers = { ...bearer('wrong-token'), 'CF-Connecting-IP': '198.51.100.78' };
    let limited: Response | undefined;
    for (let i = 0; i < 30 && !limited; i++) {
      const res = await callWith(undefined, `/v1/chat/${chatId}/messages`, { headers });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(404);
    }
    expect(limited).toBeDefined();
    expect((await errorOf(limited!)).code).toBe('rate_limited');
  });
});

describe('a chat of a profile with a ticket human check', () => {
  const TICKET_SECRET = 'chat-ticket-secret-of-at-least-32-chars!';
  const vars: Vars = {
    TICKET_SECRET,
    PROFILES: JSON.stringify({ docs: { agent: 'demo', humanCheck: 'ticket', clientOptions: ['tokens', 'delayMs'] } }),
  };
  const ticketFor = (sub?: string, profile = 'docs') =>
    signTicket({ profile, expiresAt: Math.floor(Date.now() / 1000) + 300, ...(sub ? { sub } : {}) }, TICKET_SECRET);

  it("needs a ticket for every turn; the same user's ticket opens the chat on another device, another user's does not", async () => {
    const chatId = newChatId('ticket');
    const noTicket = await callWith(vars, `/v1/chat/${chatId}/messages`, json({ text: 'hi', options: QUICK }));
    expect(noTicket.status).toBe(403);
    expect((await errorOf(noTicket)).code).toBe('human_check_failed');

    const turn = await ownTurn(chatId, { text: 'hi', options: QUICK, ticket: await ticketFor('user-1') }, {}, vars);
    await settled(chatId, bearer(turn.token!), vars);

    // Not open: the id alone, a ticket of another user, a ticket without a user: not found.
    await expectClosed(everyAccess(chatId, {}, vars));
    await expectClosed(everyAccess(chatId, bearer(await ticketFor('user-2')), vars), 404);
    const anonymousTicket = everyAccess(chatId, bearer(await ticketFor()), vars);
    expect((await anonymousTicket.messages()).status).toBe(404);

    // The same user, with a fresh ticket as the Bearer (another device): reads, and continues.
    const sameUser = everyAccess(chatId, bearer(await ticketFor('user-1')), vars);
    expect((await messagesOf(chatId, bearer(await ticketFor('user-1')), vars)).messages).toHaveLength(2);
    expect((await sameUser.stream()).status).toBe(204);
    const next = await callWith(
      vars,
      `/v1/chat/${chatId}/messages`,
      json({ text: 'more', options: QUICK, ticket: await ticketFor('user-1') }),
    );
    expect(next.status).toBe(200);
    // The chat token reads it; continuing still needs the profile's human check.
    await settled(chatId, bearer(turn.token!), vars);
    const tokenOnly = await callWith(vars, `/v1/chat/${chatId}/messages`, json({ text: 'again', options: QUICK }, bearer(turn.token!)));
    expect(tokenOnly.status).toBe(403);
  });
});

describe('failed authentications', () => {
  it('count against an anonymous client like wrong run tokens: past the limit, 429 rate_limited', async () => {
    const chatId = newChatId('keyed');
    await ownTurn(chatId, { text: 'private', options: QUICK }, KEY, KEYED);
    const headers = { ...bearer('wrong-token'), 'CF-Connecting-IP': '198.51.100.77' };
    let limited: Response | undefined;
    for (let i = 0; i < 30 && !limited; i++) {
      const res = await callWith(KEYED, `/v1/chat/${chatId}/messages`, { headers });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(404);
    }
    expect(limited).toBeDefined();
    expect((await errorOf(limited!)).code).toBe('rate_limited');
  });
});
