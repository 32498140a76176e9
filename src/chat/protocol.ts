/**
 * What the Worker and a ChatObject say to each other. The Worker has
 * validated the input, checked API keys and tickets, and resolved the turn's
 * run through its profile; the chat owns its conversation, its token check
 * and which run is its active turn.
 */
import type { RunError, RunState } from '../events';
import type { CreateChecks, Refusal, StartInput } from '../run/protocol';

/** A chat id: long enough that an id made by `useChat` (16 random alphanumerics) is unguessable. */
export const CHAT_ID = /^[A-Za-z0-9_-]{16,128}$/;
/** A message id a client may choose (useChat's own ids fit). */
export const MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Who asks, as far as the Worker could tell. */
export interface ChatAuth {
  /** A valid API key: opens every chat. */
  apiKey: boolean;
  /** A presented Bearer that was neither a key nor a ticket: maybe the chat's token. */
  token?: string;
  /** A verified start ticket's profile and user: opens the chats that user started for that profile. */
  ticket?: { profile: string; sub: string };
  /**
   * A Bearer (not an API key) was presented. If it opens nothing, the chat is
   * not found even when it is open: a token of an expired chat must never
   * write into a chat someone re-created under the same id.
   */
  presented?: true;
}

/** What the chat is asked to do with its conversation. */
export type TurnKind =
  /** A new user message, appended; with `replaces`, it takes the place of that user message and everything after it. */
  | { trigger: 'submit-message'; text: string; userMessageId: string; replaces?: string }
  /**
   * An answer again: the user message `messageId` names (or the one before the
   * assistant message it names; without it, the last user message) is asked
   * again, and everything after it is dropped.
   */
  | { trigger: 'regenerate-message'; messageId?: string };

/** One message of the conversation, in the shape of the AI SDK's `UIMessage` (text parts only). */
export interface ChatMessageView {
  id: string;
  role: 'user' | 'assistant';
  parts: { type: 'text'; text: string }[];
  /** Assistant messages: the turn's run and how it ended. */
  metadata?: { requestId: string; state: RunState; error?: RunError; truncated?: true };
}

export type PrepareOutcome =
  /** No chat of that id: the turn would create it. */
  | { kind: 'new' }
  /** The chat's profile, the conversation the turn's agent gets, and the question. */
  | { kind: 'existing'; profile: string; history: { role: 'user' | 'assistant'; content: string }[]; query: string; version: number }
  | { kind: 'not_found' }
  | { kind: 'busy'; requestId: string }
  | { kind: 'invalid'; message: string }
  | { kind: 'full'; max: number };

export interface StartTurnRequest {
  chatId: string;
  auth: ChatAuth;
  turn: TurnKind;
  /** What `prepare` answered the conversation's version was (a change since is `busy`); absent for a new chat. */
  version?: number;
  input: StartInput;
  checks: CreateChecks;
  /** For a new chat: its profile, and whether the chat id alone opens it (anonymous, public, no human check). */
  create?: { profile: string; open: boolean; sub?: string };
  /** RUN_TTL_SECONDS: the chat is deleted this long after its last turn ends. */
  ttlSeconds: number;
}

export type StartTurnOutcome =
  | {
      kind: 'started';
      requestId: string;
      runToken: string;
      /** The new chat's token: only when this turn created the chat (the chat keeps its hash). */
      chatToken?: string;
      userMessageId: string;
    }
  | { kind: 'refused'; refusal: Refusal }
  | Exclude<PrepareOutcome, { kind: 'existing' } | { kind: 'new' }>;

export type ActiveTurn =
  | { kind: 'turn'; requestId: string; running: boolean }
  | { kind: 'none' }
  /** No chat of that id at all. */
  | { kind: 'no_chat' }
  | { kind: 'not_found' };

export interface ChatView {
  chatId: string;
  agent: string;
  messages: ChatMessageView[];
  /** The turn still running, whose answer is not in `messages` yet. */
  activeTurn: { requestId: string; messageId: string } | null;
}
