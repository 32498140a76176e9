/**
 * A 200 answer not labelled `text/event-stream`. Seen in the wild: a server
 * that ignored `stream: true` and sent the whole completion as JSON; a proxy
 * that answers 200 with an `{"error": ...}` body; a base URL pointing at a
 * web page; and SSE under the wrong Content-Type. The first is delivered,
 * the last is streamed as usual, the others fail without retrying (asking
 * again gets the same answer) and without echoing what the server said.
 */
import type { AgentEvent } from '../../events';
import { readWithin } from '../../lib/timing';
import { ChatAnswer, MESSAGE_ID } from './answer';
import { safeErrorCode } from '../upstream/errors';
import { AgentError } from '../types';

/** Enough for any chat completion a client would wait for; a bound on what we trust. */
const MAX_BODY_BYTES = 1024 * 1024;

/** An OpenAI-shaped `chat.completion` (choices[0].message). */
export interface Completion {
  choices: { message: Record<string, unknown>; finish_reason?: unknown }[];
  usage?: unknown;
}

/** The fields of a JSON answer read before it counts as a `Completion`; any may be missing or of another type. */
interface JsonAnswer {
  error?: unknown;
  choices?: readonly { message?: unknown }[];
}

const notAStream = () =>
  new AgentError('upstream_malformed', 'the model endpoint did not answer with an event stream (check OPENAI_BASE_URL)', false);

/**
 * The event stream to read, or the completion a non-streaming server sent.
 * @param secret the API key, so that an error code quoting it is never shown
 */
export async function answerBody(
  res: Response,
  idleMs: number,
  secret?: string,
): Promise<{ stream: ReadableStream<Uint8Array> } | { completion: Completion }> {
  const body = res.body!;
  if (/^\s*text\/event-stream/i.test(res.headers.get('Content-Type') ?? '')) return { stream: body };
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const chunks: Uint8Array[] = [];
  let text = '';
  let bytes = 0;
  let kind: 'sse' | 'other' | undefined;
  let replaying = false;
  try {
    for (;;) {
      const result = await readWithin(reader, idleMs);
      if (result === 'timeout') throw new AgentError('upstream_timeout', `the model sent nothing for ${idleMs} ms`, true);
      if (result.done) break;
      chunks.push(result.value);
      bytes += result.value.byteLength;
      text += decoder.decode(result.value, { stream: true });
      kind ??= sniff(text);
      if (kind === 'sse') {
        replaying = true;
        return { stream: replay(chunks, reader) };
      }
      if (bytes > MAX_BODY_BYTES) throw notAStream();
    }
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('upstream_disconnected', 'the connection to the model broke mid-answer', true);
  } finally {
    if (!replaying) reader.cancel().catch(() => {});
  }
  let json: JsonAnswer | null;
  try {
    json = JSON.parse(text + decoder.decode());
  } catch {
    throw notAStream();
  }
  if (json?.error) {
    const code = safeErrorCode(json.error, secret);
    throw new AgentError(
      'upstream_error',
      `the model endpoint answered with an error instead of a stream${code ? ` (${code})` : ''}`,
      false,
    );
  }
  const message = json?.choices?.[0]?.message;
  if (message && typeof message === 'object') return { completion: json as Completion };
  throw notAStream();
}

/** Events for a whole completion: its text as one delta, tool calls, the result. */
export function completionEvents(completion: Completion, model: string): AgentEvent[] {
  const choice = completion.choices[0]!;
  const message = choice.message;
  const answer = new ChatAnswer();
  answer.apply({
    content: message.content,
    reasoning: message.reasoning_content ?? message.reasoning,
    refusal: message.refusal,
    toolCalls: message.tool_calls,
    finishReason: choice.finish_reason,
    usage: completion.usage,
  });
  // Thinking/answering statuses would all arrive at once here: only the text and the end.
  const events: AgentEvent[] = answer.text ? [{ type: 'delta', messageId: MESSAGE_ID, text: answer.text }] : [];
  return [...events, ...answer.finish(model)];
}

/** 'sse' or 'other' once the first non-blank characters say which; undefined until then. */
function sniff(text: string): 'sse' | 'other' | undefined {
  const start = text.trimStart();
  if (/^(?:data|event|id|retry)?:/.test(start)) return 'sse';
  if (start.length >= 6 || /^[^a-z:]/i.test(start)) return 'other';
  return undefined;
}

/** The chunks already read, then the rest of `reader`. */
function replay(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < chunks.length) return controller.enqueue(chunks[i++]!);
      const result = await reader.read();
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
