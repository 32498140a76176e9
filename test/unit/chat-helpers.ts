/** Helpers for the chat tests: start turns, read UI message streams with the AI SDK's own parser. */
import { env } from 'cloudflare:workers';
import { createExecutionContext, runInDurableObject } from 'cloudflare:test';
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema, type UIMessage, type UIMessageChunk } from 'ai';
import worker from '../../src/index';
import { BASE, call } from './helpers';

export const QUICK = { tokens: 5, delayMs: 0 };
export const SLOW = { tokens: 2000, delayMs: 20 };

let counter = 0;
/** A chat id as useChat makes them: 16+ random-looking characters. */
export function newChatId(label = 'chat'): string {
  return `${label}${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 10)}`.padEnd(16, 'x');
}

export type Vars = Record<string, string>;

/** Call the Worker with per-request variables (they reach the Worker, which passes what the chat needs). */
export async function callWith(vars: Vars | undefined, path: string, init: RequestInit = {}): Promise<Response> {
  if (!vars) return call(path, init);
  return worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars } as never, createExecutionContext());
}

export function json(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export interface Turn {
  chatId: string;
  token?: string;
  requestId: string;
  runToken: string;
  messageId: string;
  userMessageId: string;
}

/** Start a turn through edgestream's own endpoint (JSON); throws unless 200/201. */
export async function ownTurn(
  chatId: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  vars?: Vars,
): Promise<Turn> {
  const res = await callWith(vars, `/v1/chat/${chatId}/messages`, json(body, headers));
  if (res.status !== 201 && res.status !== 200) throw new Error(`expected 201/200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as Turn;
}

/** The body useChat's DefaultChatTransport posts for a new user message. */
export function useChatBody(chatId: string, text: string, extra: Record<string, unknown> = {}, earlier: unknown[] = []) {
  return {
    id: chatId,
    messages: [...earlier, { id: `u${Date.now().toString(36)}${counter++}`, role: 'user', parts: [{ type: 'text', text }] }],
    trigger: 'submit-message',
    ...extra,
  };
}

/** Parse a UI message stream body as the SDK's transport does; every chunk must pass its schema. */
export async function uiChunks(res: Response): Promise<UIMessageChunk[]> {
  const chunks: UIMessageChunk[] = [];
  const parsed = parseJsonEventStream({ stream: res.body!, schema: uiMessageChunkSchema });
  for await (const r of parsed as unknown as AsyncIterable<{ success: boolean; value?: UIMessageChunk; error?: unknown }>) {
    if (!r.success) throw new Error(`the SDK refused a chunk: ${String(r.error)}`);
    chunks.push(r.value!);
  }
  return chunks;
}

/** The assistant message the SDK assembles from chunks. */
export async function uiMessage(chunks: UIMessageChunk[]): Promise<UIMessage> {
  let message: UIMessage | undefined;
  const stream = new ReadableStream<UIMessageChunk>({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
  for await (const m of readUIMessageStream({ stream, onError: () => {} })) message = m;
  return message!;
}

export const textOf = (m: { parts: { type: string; text?: string }[] }) =>
  m.parts
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('');

export const chatStub = (chatId: string) => env.CHATS.get(env.CHATS.idFromName(chatId));
export const runStub = (requestId: string) => env.RUNS.get(env.RUNS.idFromName(requestId));

/** The input a turn's run was started with (what its agent got). */
export function runInput(requestId: string): Promise<{ query: string; messages: { role: string; content: string }[]; profile?: string }> {
  return runInDurableObject(runStub(requestId), (_o, state) =>
    JSON.parse(state.storage.sql.exec<{ input: string }>('SELECT input FROM run WHERE id = 1').one().input),
  );
}

export async function messagesOf(chatId: string, headers: Record<string, string> = {}, vars?: Vars) {
  const res = await callWith(vars, `/v1/chat/${chatId}/messages`, { headers });
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as {
    chatId: string;
    agent: string;
    messages: { id: string; role: string; parts: { type: string; text: string }[]; metadata?: Record<string, any> }[];
    activeTurn: { requestId: string; messageId: string } | null;
  };
}

/** Wait until the chat has no running turn (its last answer stored). */
export async function settled(chatId: string, headers: Record<string, string> = {}, vars?: Vars, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const view = await messagesOf(chatId, headers, vars);
    if (view.activeTurn === null) return view;
    if (Date.now() > until) throw new Error(`chat ${chatId} still has a turn running`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;
