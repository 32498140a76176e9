/**
 * ChatObject: one Durable Object per chat id. It owns the conversation (its
 * messages), the hashes of the chat's tokens, and which run is its active
 * turn. Each turn is an ordinary run (a RunObject, its log, its token, its
 * `done`): the chat starts it with what the Worker resolved, and when the
 * run has ended, stores its answer as the assistant message.
 *
 * The chat learns that a turn ended when it next looks (any request, or its
 * alarm every CHAT_WATCH_MS while a turn runs), so no RunObject change is
 * needed and the chat never trusts a client's copy of an answer. One alarm
 * does two jobs, as in RunObject: while a turn runs it watches the run;
 * afterwards it fires at the TTL and deletes everything.
 */
import { DurableObject } from 'cloudflare:workers';
import type { AppEnv } from '../env';
import type { RunError, RunState, TerminalState } from '../events';
import type { Caller } from '../run/protocol';
import { runStub } from '../run/run-stub';
import { hashSecret, matchesHash, newToken } from '../run/token';
import { AnswerBuilder } from './assemble';
import { fitHistory } from './history';
import type {
  ActiveTurn,
  ChatAuth,
  ChatMessageView,
  ChatView,
  PrepareOutcome,
  StartTurnOutcome,
  StartTurnRequest,
  TurnKind,
} from './protocol';
import { KEEPALIVE, runEvents } from './run-events';

/** While a turn runs, the alarm looks at its run this often: its answer is stored and the TTL starts at most this long after it ends. */
export const CHAT_WATCH_MS = 15_000;
/** Messages a chat holds at most (user and assistant together): storage per chat stays bounded. */
export const MAX_CHAT_MESSAGES = 400;
/**
 * Characters of earlier messages a turn's agent gets at most, newest first
 * (see fitHistory): a long chat keeps working with the recent part of the
 * conversation. The Worker fits it to a profile's `maxInputChars` on top.
 */
export const HISTORY_MAX_CHARS = 48_000;
/**
 * How the chat asks its turns' runs: it has checked its own caller, and a
 * run trusts it as it trusts an API-key holder (the chat stores no run token).
 */
const CHAT_CALLER: Caller = { apiKey: true };
/** The answer of a turn whose run was gone before the chat saw it end (deleted at its TTL, say). */
const RUN_GONE: RunError = {
  code: 'run_gone',
  message: "the turn's run ended and was deleted before its answer was stored",
  retryable: true,
};

interface ChatMeta {
  chatId: string;
  profile: string;
  /** The chat id alone opens it: made by an anonymous caller of a public profile without a human check. */
  open: boolean;
  /** The ticket user who made it; a ticket of the same user and profile opens it. */
  sub: string | null;
  /** `sha256:` hashes of the chat's tokens. */
  tokens: string[];
  createdAt: number;
  ttlSeconds: number;
  activeRequestId: string | null;
  /** When its last turn's run ended (null while one runs). */
  endedAt: number | null;
  /** Bumped on every change of the conversation: a turn prepared on an older one is refused. */
  version: number;
}

type ChatRow = {
  chat_id: string;
  profile: string;
  open: number;
  sub: string | null;
  tokens: string;
  created_at: number;
  ttl_seconds: number;
  active_request_id: string | null;
  ended_at: number | null;
  version: number;
};

type MessageRow = {
  pos: number;
  id: string;
  role: 'user' | 'assistant';
  text: string;
  request_id: string | null;
  state: string | null;
  error: string | null;
  truncated: number | null;
};

/** What a turn does to the stored conversation: keep messages before `cut`, ask `query`. */
interface TurnPlan {
  cut: number;
  query: string;
  history: MessageRow[];
  /** The user message to add (none when regenerating). */
  add?: { id: string; text: string };
}

export class ChatObject extends DurableObject<AppEnv> {
  #meta: ChatMeta | null = null;
  /** Operations that change or settle the conversation run one at a time (they await runs). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    // SQLite calls are synchronous: loading needs no input gate.
    this.#meta = this.#readMeta();
  }

  // ---- entry points ------------------------------------------------------

  /** Can `auth` add this turn, and with which conversation? Nothing is stored. */
  prepare(auth: ChatAuth, turn: TurnKind): Promise<PrepareOutcome> {
    return this.#exclusive(async () => {
      if (!this.#meta) return mayCreate(auth, turn) ? { kind: 'new' } : { kind: 'not_found' };
      const ready = await this.#ready(auth);
      if (ready) return ready;
      const plan = this.#plan(turn);
      if ('kind' in plan) return plan;
      const meta = this.#meta;
      const history = fitHistory(
        plan.history.map((m) => ({ role: m.role, content: m.text })),
        HISTORY_MAX_CHARS,
      );
      return { kind: 'existing', profile: meta.profile, history, query: plan.query, version: meta.version };
    });
  }

  /** Start the turn's run and record the turn; for a new chat, create it and mint its token. */
  startTurn(req: StartTurnRequest): Promise<StartTurnOutcome> {
    return this.#exclusive(async () => {
      const creating = this.#meta === null;
      if (creating) {
        if (!req.create || !mayCreate(req.auth, req.turn)) return { kind: 'not_found' };
      } else {
        const ready = await this.#ready(req.auth);
        if (ready) return ready;
        // Changed since `prepare` (a concurrent turn, or a chat created meanwhile): the caller asks again.
        if (req.version !== this.#meta!.version) return { kind: 'busy', requestId: this.#meta!.activeRequestId ?? '' };
      }
      const plan =
        creating && req.turn.trigger === 'submit-message'
          ? { cut: 0, query: req.turn.text, history: [], add: turnMessage(req.turn) }
          : this.#plan(req.turn);
      if ('kind' in plan) return plan;

      // Everything that can refuse the turn is decided above: once its run has started, only storage can fail.
      const chatToken = creating ? await newToken(req.chatId) : undefined;
      const tokenHash = chatToken !== undefined ? await hashSecret(chatToken) : null;
      const run = this.#run(req.input.requestId);
      const outcome = await run.start({ input: req.input, checks: req.checks, mayCreate: true }, { apiKey: false });
      if (outcome.kind === 'refused') return { kind: 'refused', refusal: outcome.refusal };
      // A fresh random requestId: any other outcome is a bug.
      if (outcome.kind !== 'created') throw new Error(`a turn's run was not created: ${outcome.kind}`);

      const now = Date.now();
      try {
        this.#recordTurn(req, plan, tokenHash, now, creating);
      } catch (error) {
        // A run no chat knows of could be neither seen nor stopped, and would hold the client's running slot.
        await run.cancel(CHAT_CALLER);
        throw error;
      }
      this.#meta = this.#readMeta();
      await this.#scheduleAlarm();
      const started: StartTurnOutcome = {
        kind: 'started',
        requestId: req.input.requestId,
        runToken: outcome.token,
        userMessageId: plan.add?.id ?? this.#lastUserMessage()?.id ?? '',
      };
      if (chatToken !== undefined) started.chatToken = chatToken;
      return started;
    });
  }

  /**
   * The chat's latest turn (running, or the last one that ended), for its
   * stream; with `requestId`, that turn, if it is one of this chat's.
   */
  activeTurn(auth: ChatAuth, requestId?: string): Promise<ActiveTurn> {
    return this.#exclusive(async () => {
      if (!this.#meta) return { kind: 'no_chat' };
      if (!(await this.#opens(auth))) return { kind: 'not_found' };
      await this.#settle();
      const active = this.#meta.activeRequestId;
      if (active !== null && (requestId === undefined || requestId === active)) return { kind: 'turn', requestId: active, running: true };
      const answer =
        requestId === undefined
          ? this.#lastAnswer()
          : this.ctx.storage.sql.exec<MessageRow>('SELECT * FROM messages WHERE request_id = ?', requestId).toArray()[0];
      return answer?.request_id ? { kind: 'turn', requestId: answer.request_id, running: false } : { kind: 'none' };
    });
  }

  /** The conversation, or null when there is no chat or `auth` does not open it. */
  view(auth: ChatAuth): Promise<ChatView | null> {
    return this.#exclusive(async () => {
      if (!this.#meta || !(await this.#opens(auth))) return null;
      await this.#settle();
      const meta = this.#meta;
      const messages = this.#messages().map(toView);
      const active = meta.activeRequestId;
      return {
        chatId: meta.chatId,
        agent: meta.profile,
        messages,
        activeTurn: active !== null ? { requestId: active, messageId: active } : null,
      };
    });
  }

  /** Cancel the active turn's run. `stopped` is false when no turn was running. */
  stop(auth: ChatAuth): Promise<{ stopped: boolean; requestId?: string; state?: RunState } | null> {
    return this.#exclusive(async () => {
      if (!this.#meta || !(await this.#opens(auth))) return null;
      const active = this.#meta.activeRequestId;
      let stopped = false;
      if (active !== null) stopped = (await this.#run(active).cancel(CHAT_CALLER))?.changed ?? false;
      await this.#settle();
      const last = this.#lastAnswer();
      if (!last?.request_id) return { stopped };
      return { stopped, requestId: last.request_id, state: (last.state ?? 'failed') as RunState };
    });
  }

  override alarm(): Promise<void> {
    return this.#exclusive(async () => {
      // Storage is the source of truth for the times an alarm acts on (an operator may have edited them).
      this.#meta = this.#readMeta();
      const meta = this.#meta;
      if (!meta) return;
      if (meta.activeRequestId !== null) await this.#settle();
      const settled = this.#meta!;
      if (settled.activeRequestId === null && settled.endedAt !== null && Date.now() >= settled.endedAt + settled.ttlSeconds * 1000) {
        await this.ctx.storage.deleteAll();
        this.#meta = null;
        return;
      }
      await this.#scheduleAlarm();
    });
  }

  // ---- internals ---------------------------------------------------------

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    // The queue goes on whatever one operation did.
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Null when `auth` opens the chat and no turn runs; else why not. */
  async #ready(auth: ChatAuth): Promise<Extract<PrepareOutcome, { kind: 'not_found' | 'busy' }> | null> {
    if (!(await this.#opens(auth))) return { kind: 'not_found' };
    await this.#settle();
    const active = this.#meta!.activeRequestId;
    return active !== null ? { kind: 'busy', requestId: active } : null;
  }

  async #opens(auth: ChatAuth): Promise<boolean> {
    const meta = this.#meta;
    if (!meta) return false;
    if (auth.apiKey) return true;
    let matched = false;
    if (auth.ticket && meta.sub !== null && auth.ticket.sub === meta.sub && auth.ticket.profile === meta.profile) matched = true;
    if (auth.token !== undefined) {
      // Every stored hash is compared, so the timing does not say which one matched.
      for (const stored of meta.tokens) if (await matchesHash(auth.token, stored)) matched = true;
    }
    // The id alone opens an open chat, but a presented credential that opens nothing is refused:
    // the owner of an expired chat must learn that this is no longer their chat.
    return matched || (meta.open && auth.presented !== true);
  }

  /** What `turn` does to the stored conversation, or why it cannot. */
  #plan(turn: TurnKind): TurnPlan | Extract<PrepareOutcome, { kind: 'invalid' | 'full' }> {
    const messages = this.#messages();
    if (turn.trigger === 'regenerate-message') {
      let from = messages.length - 1;
      if (turn.messageId !== undefined) {
        from = messages.findIndex((m) => m.id === turn.messageId);
        if (from === -1) return { kind: 'invalid', message: `messageId: the chat has no message "${turn.messageId}" to answer again` };
      }
      // An assistant message is answered again from the user message before it.
      const at = messages.findLastIndex((m, i) => i <= from && m.role === 'user');
      if (at === -1) return { kind: 'invalid', message: 'the chat has no message to answer again' };
      const asked = messages[at]!;
      return { cut: asked.pos + 1, query: asked.text, history: messages.slice(0, at) };
    }
    let keep = messages;
    if (turn.replaces !== undefined) {
      const at = messages.findIndex((m) => m.id === turn.replaces);
      if (at === -1 || messages[at]!.role !== 'user') {
        return { kind: 'invalid', message: `messageId: the chat has no user message "${turn.replaces}" to replace` };
      }
      keep = messages.slice(0, at);
      if (keep.some((m) => m.id === turn.userMessageId)) {
        return {
          kind: 'invalid',
          message: `the chat keeps a message "${turn.userMessageId}" before "${turn.replaces}"; the edited message takes the id of the one it replaces, or a new one`,
        };
      }
    } else if (messages.some((m) => m.id === turn.userMessageId)) {
      return {
        kind: 'invalid',
        message: `the chat already has a message "${turn.userMessageId}"; to edit it, send its id as messageId`,
      };
    }
    if (keep.length + 2 > MAX_CHAT_MESSAGES) return { kind: 'full', max: MAX_CHAT_MESSAGES };
    const cut = turn.replaces !== undefined ? messages[keep.length]!.pos : Number.MAX_SAFE_INTEGER;
    return { cut, query: turn.text, history: keep, add: turnMessage(turn) };
  }

  /**
   * If the active turn's run has ended, store its answer and end the turn.
   * The run is read from its own log, never from a client.
   */
  async #settle(): Promise<void> {
    const requestId = this.#meta?.activeRequestId;
    if (!requestId) return;
    const run = this.#run(requestId);
    const status = await run.status(CHAT_CALLER);
    if (status?.state === 'running') return;
    const builder = new AnswerBuilder();
    if (status) {
      const events = runEvents(run, CHAT_CALLER, 0);
      for (let next = await events.next(); !next.done; next = await events.next()) {
        if (next.value !== KEEPALIVE) builder.add(next.value);
      }
    }
    const answer = builder.answer(
      status
        ? { state: status.state as TerminalState, ...(status.error ? { error: status.error } : {}) }
        : { state: 'failed', error: RUN_GONE },
    );
    const endedAt = status?.finishedAt ?? Date.now();
    this.ctx.storage.transactionSync(() => {
      const sql = this.ctx.storage.sql;
      sql.exec(
        'INSERT INTO messages (id, role, text, request_id, state, error, truncated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        requestId,
        'assistant',
        answer.text,
        requestId,
        answer.state,
        answer.error ? JSON.stringify(answer.error) : null,
        answer.truncated ? 1 : null,
        endedAt,
      );
      sql.exec('UPDATE chat SET active_request_id = NULL, ended_at = ?, version = version + 1 WHERE id = 1', endedAt);
    });
    this.#meta = this.#readMeta();
    await this.#scheduleAlarm();
  }

  /** The turn in storage, all or nothing: its user message, and its run as the active turn. */
  #recordTurn(req: StartTurnRequest, plan: TurnPlan, tokenHash: string | null, now: number, creating: boolean): void {
    this.ctx.storage.transactionSync(() => {
      if (creating) this.#create(req, tokenHash!, now);
      const sql = this.ctx.storage.sql;
      sql.exec('DELETE FROM messages WHERE pos >= ?', plan.cut);
      if (plan.add) {
        sql.exec('INSERT INTO messages (id, role, text, created_at) VALUES (?, ?, ?, ?)', plan.add.id, 'user', plan.add.text, now);
      }
      sql.exec(
        'UPDATE chat SET active_request_id = ?, ended_at = NULL, ttl_seconds = ?, version = version + 1 WHERE id = 1',
        req.input.requestId,
        req.ttlSeconds,
      );
    });
  }

  #create(req: StartTurnRequest, tokenHash: string, now: number): void {
    const sql = this.ctx.storage.sql;
    sql.exec(
      `CREATE TABLE IF NOT EXISTS chat (
         id                INTEGER PRIMARY KEY CHECK (id = 1),
         chat_id           TEXT NOT NULL,
         profile           TEXT NOT NULL,
         open              INTEGER NOT NULL,
         sub               TEXT,
         tokens            TEXT NOT NULL,
         created_at        INTEGER NOT NULL,
         ttl_seconds       INTEGER NOT NULL,
         active_request_id TEXT,
         ended_at          INTEGER,
         version           INTEGER NOT NULL
       )`,
    );
    sql.exec(
      `CREATE TABLE IF NOT EXISTS messages (
         pos        INTEGER PRIMARY KEY,
         id         TEXT NOT NULL UNIQUE,
         role       TEXT NOT NULL,
         text       TEXT NOT NULL,
         request_id TEXT,
         state      TEXT,
         error      TEXT,
         truncated  INTEGER,
         created_at INTEGER NOT NULL
       )`,
    );
    const create = req.create!;
    sql.exec(
      `INSERT INTO chat (id, chat_id, profile, open, sub, tokens, created_at, ttl_seconds, version)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, 0)`,
      req.chatId,
      create.profile,
      create.open ? 1 : 0,
      create.sub ?? null,
      tokenHash,
      now,
      req.ttlSeconds,
    );
  }

  /** Read the chat, if there is one. Only reads: asking about an unknown id leaves nothing behind. */
  #readMeta(): ChatMeta | null {
    const sql = this.ctx.storage.sql;
    const exists = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chat'").toArray().length > 0;
    const row = exists ? sql.exec<ChatRow>('SELECT * FROM chat WHERE id = 1').toArray()[0] : undefined;
    if (!row) return null;
    return {
      chatId: row.chat_id,
      profile: row.profile,
      open: row.open === 1,
      sub: row.sub,
      tokens: row.tokens.split(' '),
      createdAt: row.created_at,
      ttlSeconds: row.ttl_seconds,
      activeRequestId: row.active_request_id,
      endedAt: row.ended_at,
      version: row.version,
    };
  }

  #messages(): MessageRow[] {
    return this.ctx.storage.sql.exec<MessageRow>('SELECT * FROM messages ORDER BY pos').toArray();
  }

  #lastAnswer(): MessageRow | undefined {
    return this.ctx.storage.sql.exec<MessageRow>("SELECT * FROM messages WHERE role = 'assistant' ORDER BY pos DESC LIMIT 1").toArray()[0];
  }

  #lastUserMessage(): MessageRow | undefined {
    return this.ctx.storage.sql.exec<MessageRow>("SELECT * FROM messages WHERE role = 'user' ORDER BY pos DESC LIMIT 1").toArray()[0];
  }

  #run(requestId: string) {
    return runStub(this.env, requestId);
  }

  async #scheduleAlarm(): Promise<void> {
    const meta = this.#meta;
    if (!meta) return;
    const at = meta.activeRequestId !== null ? Date.now() + CHAT_WATCH_MS : (meta.endedAt ?? Date.now()) + meta.ttlSeconds * 1000;
    await this.ctx.storage.setAlarm(at);
  }
}

/**
 * May this turn create a chat that does not exist? Only a new message, and
 * not with a chat token: that token's chat is gone, and its holder must be
 * told so (`chat_not_found`) rather than be handed a new chat under the old id.
 */
function mayCreate(auth: ChatAuth, turn: TurnKind): boolean {
  return turn.trigger === 'submit-message' && turn.replaces === undefined && auth.token === undefined;
}

function turnMessage(turn: Extract<TurnKind, { trigger: 'submit-message' }>): { id: string; text: string } {
  return { id: turn.userMessageId, text: turn.text };
}

function toView(row: MessageRow): ChatMessageView {
  const view: ChatMessageView = { id: row.id, role: row.role, parts: [{ type: 'text', text: row.text }] };
  if (row.role === 'assistant' && row.request_id) {
    view.metadata = { requestId: row.request_id, state: (row.state ?? 'failed') as RunState };
    if (row.error) view.metadata.error = JSON.parse(row.error) as RunError;
    if (row.truncated) view.metadata.truncated = true;
  }
  return view;
}
