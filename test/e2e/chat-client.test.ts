// The client library's Chat against `wrangler dev`: what the widget will
// use. The browser keeps only {chatId, token}; another "device" with the
// same handle sees the same conversation and can follow a running answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chat, ChatError, newChatId } from '../../src/client/chat';
import type { RunEvent } from '../../src/client/types';
import type { HandleStorage } from '../../src/client/persist';
import { startDevServer, type DevServer } from '../support/dev-server';
import { demoText } from './demo-reference';

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer({ vars: { HEARTBEAT_MS: '500', RETRY_MS: '100' } });
});
afterAll(async () => {
  await server?.stop();
});

const QUICK = { tokens: 12, delayMs: 2 };
const SLOW = { tokens: 400, delayMs: 15 };

function memoryStorage(): HandleStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v), removeItem: (k) => void data.delete(k) };
}

/** Every delta of a turn, in order, until its done. */
async function answerOf(run: AsyncIterable<RunEvent>): Promise<{ text: string; done: string }> {
  let text = '';
  let done = '';
  for await (const event of run) {
    if (event.type === 'delta') text += event.text;
    if (event.type === 'done') done = event.state;
  }
  return { text, done };
}

describe('Chat (client library)', () => {
  it('sends, streams the answer, keeps only {chatId, token}, and continues the conversation', async () => {
    const storage = memoryStorage();
    const chat = new Chat({ endpoint: server.url, persistKey: 'help', storage, options: QUICK });
    expect(chat.chatId).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    const first = await answerOf(await chat.send('first question'));
    expect(first).toEqual({ text: demoText('first question', QUICK), done: 'completed' });
    expect(JSON.parse(storage.data.get('help')!)).toEqual({ chatId: chat.chatId, token: chat.token });
    expect(chat.token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const second = await answerOf(await chat.send('second question', { options: { tokens: 4 } }));
    expect(second.text).toBe(demoText('second question', { ...QUICK, tokens: 4 }));
    const view = await chat.messages();
    expect(view.messages.map((m) => [m.role, m.parts[0]!.text])).toEqual([
      ['user', 'first question'],
      ['assistant', first.text],
      ['user', 'second question'],
      ['assistant', second.text],
    ]);

    // A reload: restored from storage, the same conversation.
    const restored = Chat.restore({ endpoint: server.url, persistKey: 'help', storage })!;
    expect(restored.handle).toEqual(chat.handle);
    expect((await restored.messages()).messages).toEqual(view.messages);
    restored.forget();
    expect(storage.data.has('help')).toBe(false);
  });

  it('another device with the handle follows the running answer from its start, then both see one conversation', async () => {
    const chat = new Chat({ endpoint: server.url, options: SLOW });
    const run = await chat.send('a long answer');
    const mine = answerOf(run);
    const other = new Chat({ endpoint: server.url, ...chat.handle });
    const following = await other.resume();
    expect(following).not.toBeNull();
    const theirs = await answerOf(following!);
    expect(theirs).toEqual(await mine);
    expect(theirs.text).toBe(demoText('a long answer', SLOW));
    await expect.poll(async () => (await other.messages()).activeTurn, { timeout: 20_000 }).toBeNull();
    expect(await other.messages()).toEqual(await chat.messages());
    expect(await other.resume()).toBeNull();
  });

  it('stops a running turn on the server, regenerates the last answer, and reports errors by code', async () => {
    const chat = new Chat({ endpoint: server.url, options: SLOW });
    const run = await chat.send('stop me');
    await expect(chat.send('too soon')).rejects.toMatchObject({ name: 'ChatError', code: 'chat_busy', status: 409 });
    const stopped = await chat.stop();
    expect(stopped).toMatchObject({ stopped: true, state: 'cancelled' });
    expect((await answerOf(run)).done).toBe('cancelled');

    const again = await answerOf(await chat.regenerate({ options: QUICK }));
    expect(again.text).toBe(demoText('stop me', QUICK));
    const view = await chat.messages();
    expect(view.messages).toHaveLength(2);
    expect(view.messages[1]!.metadata).toMatchObject({ state: 'completed' });

    const stranger = new Chat({ endpoint: server.url, chatId: newChatId(), token: 'not-a-token' });
    const error = await stranger.messages().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChatError);
    expect(error).toMatchObject({ code: 'chat_not_found', status: 404 });
  });
  it('forgets a stored chat that is gone or no longer its own, and starts a new one', async () => {
    // The stored chat expired and someone re-created its id as an open chat of their own.
    const storage = memoryStorage();
    const theirs = new Chat({ endpoint: server.url, options: QUICK });
    await answerOf(await theirs.send('not yours'));
    const expired = new Chat({ endpoint: server.url, options: QUICK });
    await answerOf(await expired.send('mine, long ago'));
    storage.data.set('help', JSON.stringify({ chatId: theirs.chatId, token: expired.token }));

    const restored = Chat.restore({ endpoint: server.url, persistKey: 'help', storage, options: QUICK })!;
    const answer = await answerOf(await restored.send('my question'));
    expect(answer).toEqual({ text: demoText('my question', QUICK), done: 'completed' });
    // A new chat of its own, kept instead of the old handle; the other chat got nothing.
    expect(restored.chatId).not.toBe(theirs.chatId);
    expect(restored.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(restored.token).not.toBe(expired.token);
    expect(JSON.parse(storage.data.get('help')!)).toEqual(restored.handle);
    expect((await restored.messages()).messages.map((m) => m.parts[0]!.text)).toEqual(['my question', answer.text]);
    expect((await theirs.messages()).messages).toHaveLength(2);

    // Reading a stored handle that opens nothing: chat_not_found, and the handle is forgotten.
    storage.data.set('help', JSON.stringify({ chatId: theirs.chatId, token: expired.token }));
    const stale = Chat.restore({ endpoint: server.url, persistKey: 'help', storage })!;
    await expect(stale.messages()).rejects.toMatchObject({ code: 'chat_not_found' });
    expect(stale.chatId).not.toBe(theirs.chatId);
    expect(stale.token).toBeUndefined();
    expect(JSON.parse(storage.data.get('help')!)).toEqual({ chatId: stale.chatId });
  });
});
