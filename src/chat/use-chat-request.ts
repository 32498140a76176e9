/**
 * The turn a `useChat` request asks for. The server keeps the conversation,
 * so of the messages `useChat` sends only the last one counts, and only when
 * it is the user's new message: earlier turns, and answers above all, are
 * never taken from a client.
 */
import { ApiError } from '../errors';
import { newRequestId } from '../run/token';
import { MESSAGE_ID, type TurnKind } from './protocol';
import { MessageText, type UseChatBody } from './schemas';

export function useChatTurn(body: UseChatBody): TurnKind {
  // useChat's regenerate({ messageId }) names the answer to redo (or a user message); without it, the last.
  if (body.trigger === 'regenerate-message') return regenerate(body.messageId);
  const at = body.messages.length - 1;
  const last = body.messages[at];
  if (last?.role !== 'user') {
    throw invalid(['messages', Math.max(at, 0)], "the last message must be the user's new message (role user)");
  }
  const text = last.parts
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
  if (!MessageText.safeParse(text).success) throw invalid(['messages', at, 'parts'], 'the text parts must hold 1..16000 characters');
  // useChat's own ids fit; any other gets a server-made one.
  const userMessageId = last.id !== undefined && MESSAGE_ID.test(last.id) ? last.id : `msg_${newRequestId().slice(4)}`;
  if (body.messageId === undefined) return { trigger: 'submit-message', text, userMessageId };
  if (!MESSAGE_ID.test(body.messageId)) throw invalid(['messageId'], 'must match ^[A-Za-z0-9_.:-]{1,128}$');
  // An edited message (useChat's sendMessage({ messageId })): it replaces that one and what followed.
  return { trigger: 'submit-message', text, userMessageId, replaces: body.messageId };
}

/** A regenerate turn; a `messageId` that could not be a message id is refused here, one the chat lacks by the chat. */
export function regenerate(messageId: string | undefined): TurnKind {
  if (messageId === undefined) return { trigger: 'regenerate-message' };
  if (!MESSAGE_ID.test(messageId)) throw invalid(['messageId'], 'must match ^[A-Za-z0-9_.:-]{1,128}$');
  return { trigger: 'regenerate-message', messageId };
}

function invalid(path: (string | number)[], message: string): ApiError {
  return new ApiError('invalid_request', `${path.join('.')}: ${message}`, [{ path, message }]);
}
