/**
 * Chat: a conversation kept by the server (`/v1/chat/{chatId}/...`), of
 * which the browser keeps only the chat's id and credential. A reload, a
 * second tab or another device with the same credential sees the same
 * conversation. Each turn is a run, followed with `AgentRun` (resumable,
 * exactly once, in order).
 *
 * @example
 * const chat = Chat.restore({ endpoint, persistKey: 'help-chat' }) ?? new Chat({ endpoint, persistKey: 'help-chat' });
 * const { messages, activeTurn } = await chat.messages();   // show them
 * const running = activeTurn ? await chat.resume({ onEvent }) : null;  // an answer still streaming
 * const run = await chat.send('How do I resume?', { onEvent }); // deltas arrive in onEvent
 * await run.finished;
 *
 * A stored handle that opens nothing any more (the chat expired, or its id
 * was taken since by a chat of someone else) is answered `chat_not_found`:
 * the Chat then forgets it and moves to a new chat id (`chatId` changes),
 * and `send` asks its question there.
 */
import { AgentRun, type RunOptions } from './run';
import type { HandleStorage } from './persist';
import type { RunError } from '../events';
import type { RunEvent, RunState } from './types';

/** What identifies a chat to its owner: kept in storage, nothing else. */
export interface ChatHandle {
  chatId: string;
  /** The chat's token (from its first turn), an API key, or a start ticket naming the user; absent for an open chat made elsewhere. */
  token?: string;
}

/** One message of the conversation (the AI SDK's `UIMessage` shape, text parts only). */
export interface ChatViewMessage {
  id: string;
  role: 'user' | 'assistant';
  parts: { type: 'text'; text: string }[];
  /** Assistant messages: the turn's run and how it ended. */
  metadata?: { requestId: string; state: RunState; error?: RunError; truncated?: true };
}

export interface ChatView {
  chatId: string;
  /** The chat's profile. */
  agent: string;
  /** The conversation; the answer of a turn still running is not in it yet (see `activeTurn`). */
  messages: ChatViewMessage[];
  activeTurn: { requestId: string; messageId: string } | null;
}

export interface ChatOptions {
  /** Base URL of the service, e.g. `https://edgestream.example.com`. */
  endpoint: string;
  /** The chat's id (16..128 of `A-Za-z0-9_-`); a new unguessable one when absent. */
  chatId?: string;
  /** The chat's credential, when it is known already (see `ChatHandle.token`). */
  token?: string;
  /** The profile of the chat's first turn; later turns keep the chat's. */
  agent?: string;
  /** `options` sent with every turn (a turn's own win). */
  options?: Record<string, unknown>;
  /** Keep `{chatId, token}` under this key, in localStorage by default so every tab of the site sees the chat. */
  persistKey?: string;
  storage?: HandleStorage;
  fetch?: typeof fetch;
  /** Passed on to each turn's `AgentRun`. */
  heartbeatMs?: RunOptions['heartbeatMs'];
  backoff?: RunOptions['backoff'];
}

/** What one turn adds to the chat's options. */
export interface TurnOptions {
  options?: Record<string, unknown>;
  /** Human-check evidence, for a profile with `humanCheck` (every turn needs it). */
  ticket?: string;
  turnstileToken?: string;
  /** The turn's events as they arrive (else iterate the returned `AgentRun`). */
  onEvent?: (event: RunEvent) => void;
  onState?: RunOptions['onState'];
  /** Disconnects (never stops) the turn when aborted; `stop()` stops it. */
  signal?: AbortSignal;
}

/** A chat endpoint's error answer (`code` is the contract's, e.g. `chat_busy`, `chat_not_found`). */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A new chat id: 16 bytes of randomness, base64url (as unguessable as a run id). */
export function newChatId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `c_${btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

/** Set while `Chat.restore` constructs: the handle is in storage already. */
let restoring = false;

export class Chat {
  /** Changes when the chat is gone and a new one takes its place (see `send`). */
  chatId: string;
  token: string | undefined;
  readonly #opts: ChatOptions;
  readonly #fetch: typeof fetch;

  constructor(opts: ChatOptions) {
    this.#opts = opts;
    this.chatId = opts.chatId ?? newChatId();
    this.token = opts.token;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    if (!restoring) this.#save();
  }

  /**
   * The chat kept under `persistKey`, or null when there is none. Writes
   * nothing: another tab reading the key meanwhile must never see the
   * handle without its token (and an unchanged key fires no `storage` event).
   */
  static restore(opts: ChatOptions & { persistKey: string }): Chat | null {
    const handle = loadChat(opts.persistKey, opts.storage);
    if (!handle) return null;
    restoring = true;
    const chat = new Chat({ ...opts, chatId: handle.chatId });
    restoring = false;
    // The stored token is the chat's, not one the app configured: a chat that is gone takes it along.
    if (handle.token !== undefined) chat.token = handle.token;
    return chat;
  }

  get handle(): ChatHandle {
    return this.token !== undefined ? { chatId: this.chatId, token: this.token } : { chatId: this.chatId };
  }

  /**
   * Ask: the user's message starts a turn (the first one creates the chat).
   * Resolves once the server took it, with the run that streams the answer.
   * When the chat is gone (`chat_not_found`: expired, or its id taken by
   * another's chat since), the question starts a new chat (`chatId` changes).
   * @throws ChatError e.g. `chat_busy` (a turn is still running), `human_check_failed`, `rate_limited`
   */
  async send(text: string, turn: TurnOptions = {}): Promise<AgentRun> {
    const asked = this.chatId;
    try {
      return await this.#turn({ text }, turn);
    } catch (error) {
      // Renewed (see #answer): ask in the new chat, once.
      if (!(error instanceof ChatError) || error.code !== 'chat_not_found' || this.chatId === asked) throw error;
      return this.#turn({ text }, turn);
    }
  }

  /**
   * Ask again: without `messageId` the last question (the last answer is
   * replaced); with the id of an answer or a user message, that question,
   * and every message after it is dropped.
   */
  regenerate(turn: TurnOptions & { messageId?: string } = {}): Promise<AgentRun> {
    const { messageId, ...rest } = turn;
    return this.#turn({ trigger: 'regenerate-message', ...(messageId !== undefined ? { messageId } : {}) }, rest);
  }

  /**
   * The conversation as the server has it.
   * @throws ChatError `chat_not_found` when the chat is gone or its handle opens nothing (then forgotten: the next `send` starts a new chat)
   */
  async messages(): Promise<ChatView> {
    const res = await this.#fetch(this.#url('/messages'), { headers: this.#auth() });
    return (await this.#answer(res)) as ChatView;
  }

  /**
   * Follow the turn still running (after a reload, in another tab), from its
   * first event; null when none runs.
   */
  async resume(turn: Omit<TurnOptions, 'options' | 'ticket' | 'turnstileToken'> = {}): Promise<AgentRun | null> {
    const { activeTurn } = await this.messages();
    if (!activeTurn) return null;
    const path = this.#url(`/events?requestId=${encodeURIComponent(activeTurn.requestId)}`);
    // The chat's credential reads its turns (an open chat needs none: its id is enough).
    return this.#follow(activeTurn.requestId, this.token ?? '', path, turn);
  }

  /** Stop the running turn on the server (its run ends `cancelled`). */
  async stop(): Promise<{ chatId: string; stopped: boolean; requestId?: string; state?: RunState }> {
    const res = await this.#fetch(this.#url('/stop'), { method: 'POST', headers: this.#auth() });
    return (await this.#answer(res)) as { chatId: string; stopped: boolean; requestId?: string; state?: RunState };
  }

  /** Forget the chat in this browser (the server keeps it until its TTL). */
  forget(): void {
    const { persistKey, storage } = this.#opts;
    if (!persistKey) return;
    try {
      storageOr(storage)?.removeItem(persistKey);
    } catch {
      // nothing to clear
    }
  }

  async #turn(body: Record<string, unknown>, turn: TurnOptions): Promise<AgentRun> {
    const { agent, options } = this.#opts;
    const payload = {
      ...body,
      agent,
      options: { ...options, ...turn.options },
      ticket: turn.ticket,
      turnstileToken: turn.turnstileToken,
    };
    const res = await this.#fetch(this.#url('/messages'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...this.#auth() },
      body: JSON.stringify(payload),
    });
    const started = (await this.#answer(res)) as { requestId: string; runToken: string; token?: string };
    if (started.token !== undefined && this.token === undefined) {
      this.token = started.token;
      this.#save();
    }
    // Its own run token reads the turn's run (and `cancel()` works on it).
    return this.#follow(started.requestId, started.runToken, undefined, turn);
  }

  /** `answer`, and a chat that is gone (or not this handle's) is replaced by a new one. */
  async #answer(res: Response): Promise<unknown> {
    try {
      return await answer(res);
    } catch (error) {
      if (error instanceof ChatError && error.code === 'chat_not_found') this.#renew();
      throw error;
    }
  }

  /**
   * Forget the chat and move to a new id. The token goes with it unless the
   * app configured it (an API key or a ticket): a chat's own token opens
   * nothing else, and a key of the app's still works in the new chat.
   */
  #renew(): void {
    const presented = this.token;
    // A key opens every chat and creates any: its holder is told "not found" only for a chat not made yet.
    if (presented !== undefined && presented === this.#opts.token) return;
    this.forget();
    this.chatId = newChatId();
    this.token = this.#opts.token;
    this.#save();
  }

  #follow(requestId: string, token: string, eventsPath: string | undefined, turn: TurnOptions): AgentRun {
    const { endpoint, heartbeatMs, backoff } = this.#opts;
    const opts: RunOptions = { endpoint, resume: { requestId, token, lastEventId: 0 }, fetch: this.#fetch };
    if (eventsPath !== undefined) opts.eventsPath = eventsPath;
    if (heartbeatMs !== undefined) opts.heartbeatMs = heartbeatMs;
    if (backoff !== undefined) opts.backoff = backoff;
    if (turn.onEvent) opts.onEvent = turn.onEvent;
    if (turn.onState) opts.onState = turn.onState;
    if (turn.signal) opts.signal = turn.signal;
    return new AgentRun(opts);
  }

  #auth(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /** A path under this chat, absolute on the endpoint. */
  #url(path: string): string {
    return new URL(`/v1/chat/${encodeURIComponent(this.chatId)}${path}`, this.#opts.endpoint).href;
  }

  #save(): void {
    const { persistKey, storage } = this.#opts;
    if (!persistKey) return;
    try {
      storageOr(storage)?.setItem(persistKey, JSON.stringify(this.handle));
    } catch {
      // quota or blocked storage: the chat still works in this page
    }
  }
}

/** The JSON of a 2xx answer, or its contract error as a ChatError. */
async function answer(res: Response): Promise<unknown> {
  const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  if (res.ok && body) return body;
  const error = body?.error;
  throw new ChatError(error?.code ?? 'client_error', error?.message ?? `the service answered ${res.status}`, res.status);
}

function loadChat(key: string, storage?: HandleStorage): ChatHandle | null {
  try {
    const raw = storageOr(storage)?.getItem(key);
    if (!raw) return null;
    const h = JSON.parse(raw) as Partial<ChatHandle>;
    if (typeof h.chatId !== 'string') return null;
    return typeof h.token === 'string' ? { chatId: h.chatId, token: h.token } : { chatId: h.chatId };
  } catch {
    return null;
  }
}

/** localStorage: a chat outlives the tab, and every tab of the site shares it. */
function storageOr(storage?: HandleStorage): HandleStorage | undefined {
  if (storage) return storage;
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // storage blocked (privacy settings, sandboxed iframe)
  }
}
