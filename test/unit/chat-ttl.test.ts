// A chat's alarm: while a turn runs it watches the run and stores the answer
// with no request needed; RUN_TTL_SECONDS after the last turn ended it
// deletes the chat's storage. Alarms are fired on purpose.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { demoText } from '../e2e/demo-reference';
import { call } from './helpers';
import { QUICK, chatStub, messagesOf, newChatId, ownTurn, settled } from './chat-helpers';

function tables(chatId: string): Promise<string[]> {
  return runInDurableObject(chatStub(chatId), (_o, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
      .toArray()
      .map((r) => r.name),
  );
}

const storedMessages = (chatId: string) =>
  runInDurableObject(chatStub(chatId), (_o, state) =>
    state.storage.sql
      .exec<{ role: string; text: string; state: string | null }>('SELECT role, text, state FROM messages ORDER BY pos')
      .toArray(),
  );

async function runEnded(requestId: string, runToken: string): Promise<void> {
  for (;;) {
    const res = await call(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${runToken}` } });
    if (((await res.json()) as { state: string }).state !== 'running') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('chat alarms', () => {
  it("stores a turn's answer by alarm once its run has ended, with no request to the chat", async () => {
    const chatId = newChatId('alarm');
    const turn = await ownTurn(chatId, { text: 'watch me', options: QUICK });
    await runEnded(turn.requestId, turn.runToken);
    expect((await storedMessages(chatId)).map((m) => m.role)).toEqual(['user']);
    expect(await runDurableObjectAlarm(chatStub(chatId))).toBe(true);
    expect(await storedMessages(chatId)).toEqual([
      { role: 'user', text: 'watch me', state: null },
      { role: 'assistant', text: demoText('watch me', QUICK), state: 'completed' },
    ]);
  });

  it('keeps a chat until RUN_TTL_SECONDS after its last turn ended, then deletes all of it', async () => {
    const chatId = newChatId('ttl');
    await ownTurn(chatId, { text: 'short-lived', options: QUICK });
    await settled(chatId);
    expect(await runDurableObjectAlarm(chatStub(chatId))).toBe(true); // early: TTL not reached, kept
    expect((await messagesOf(chatId)).messages).toHaveLength(2);

    await runInDurableObject(chatStub(chatId), (_o, state) => {
      state.storage.sql.exec('UPDATE chat SET ended_at = ? WHERE id = 1', Date.now() - 86_400_001);
    });
    expect(await runDurableObjectAlarm(chatStub(chatId))).toBe(true);
    expect((await call(`/v1/chat/${chatId}/messages`)).status).toBe(404);
    expect((await call(`/v1/chat/${chatId}/stream`)).status).toBe(204);
    // Nothing is left behind: not a row, not even an empty table.
    expect(await tables(chatId)).toEqual([]);
  });

  it('a new turn moves the TTL: it counts from the end of the last turn', async () => {
    const chatId = newChatId('ttl');
    await ownTurn(chatId, { text: 'one', options: QUICK });
    await settled(chatId);
    await runInDurableObject(chatStub(chatId), (_o, state) => {
      state.storage.sql.exec('UPDATE chat SET ended_at = ? WHERE id = 1', Date.now() - 86_000_000);
    });
    await ownTurn(chatId, { text: 'two', options: QUICK });
    await settled(chatId);
    expect(await runDurableObjectAlarm(chatStub(chatId))).toBe(true);
    expect((await messagesOf(chatId)).messages).toHaveLength(4);
  });

  it('writes nothing for a chat that does not exist, however it is asked', async () => {
    const chatId = newChatId('never');
    for (const [path, init] of [
      [`/v1/chat/${chatId}/messages`, {}],
      [`/v1/chat/${chatId}/events`, {}],
      [`/v1/chat/${chatId}/stream`, {}],
      [`/v1/chat/${chatId}/stop`, { method: 'POST' }],
    ] as const) {
      await (await call(path, init)).body?.cancel();
    }
    expect(await tables(chatId)).toEqual([]);
  });
});
