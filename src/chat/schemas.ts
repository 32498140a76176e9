/**
 * zod schemas of the chat endpoints' bodies: the one `useChat`'s
 * `DefaultChatTransport` sends, and edgestream's own.
 */
import * as z from 'zod/mini';
import { ClientOptions } from '../schemas';

/**
 * The JSON body limit of `POST /v1/chat`. `useChat` sends the whole
 * conversation it holds on every turn (the server reads only the last
 * message), so it is larger than the 64 KiB of `POST /v1/runs`.
 */
export const MAX_USE_CHAT_BODY_BYTES = 1024 * 1024;

const Trigger = z.enum(['submit-message', 'regenerate-message']);
const Evidence = {
  agent: z.optional(z.string()),
  options: ClientOptions,
  ticket: z.optional(z.string().check(z.maxLength(4096))),
  turnstileToken: z.optional(z.string().check(z.maxLength(4096))),
};

/** A user message's text: what `query` of `POST /v1/runs` takes. */
export const MessageText = z.string().check(z.minLength(1), z.maxLength(16_000));

/** What `DefaultChatTransport` posts, plus what an app adds through `useChat`'s `body` option. Other fields are ignored. */
export const UseChatBody = z.object({
  id: z.string(),
  messages: z.array(
    z.looseObject({
      id: z.optional(z.string()),
      role: z.string(),
      parts: z._default(z.array(z.looseObject({ type: z.string(), text: z.optional(z.string()) })), []),
    }),
  ),
  trigger: Trigger,
  messageId: z.optional(z.string()),
  ...Evidence,
});
export type UseChatBody = z.infer<typeof UseChatBody>;

/** The body of `POST /v1/chat/{chatId}/messages`. */
export const TurnBody = z.object({
  text: z.optional(MessageText),
  trigger: z._default(Trigger, 'submit-message'),
  /** With `submit-message`: the user message this one replaces (it and everything after it go). */
  messageId: z.optional(z.string()),
  ...Evidence,
});
export type TurnBody = z.infer<typeof TurnBody>;
