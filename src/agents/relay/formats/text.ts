/**
 * `text`: the generic mapping for a stream of plain text: each message's
 * data is a piece of the answer. `data: [DONE]` or the end of the body ends
 * it (a clean end cannot be told from an early one: prefer a dialect with a
 * final message when there is one).
 *
 * | message | here |
 * | --- | --- |
 * | any data (verbatim, multi-line data joined by `\n`) | `delta` |
 * | `[DONE]`, or the end of the body | `result` with the whole text |
 * | `event: error` | `upstream_error` |
 * | the body cut in the middle of a message | `upstream_incomplete` |
 */
import type { AgentEvent } from '../../../events';
import { AgentError } from '../../types';
import { MESSAGE_ID, isObject, reportedError, type FormatReader, type Mapped, type RelayFormat, type UpstreamMessage } from './format';

/**
 * A reader that assembles the answer from the pieces `pieceOf` finds in
 * each message (shared with the `json` format).
 */
export class PiecesReader implements FormatReader {
  #text: string;
  #pieceOf: (message: UpstreamMessage) => string | undefined;

  /** @param pieceOf the text a message adds; throws AgentError for a message that is not of the dialect */
  constructor(pieceOf: (message: UpstreamMessage) => string | undefined, restored?: unknown) {
    this.#pieceOf = pieceOf;
    this.#text = isObject(restored) && typeof restored.text === 'string' ? restored.text : '';
  }

  read(message: UpstreamMessage): Mapped {
    if (message.event === 'error') throw reportedError();
    if (message.data.trim() === '[DONE]') return { events: this.end(), final: true };
    const piece = this.#pieceOf(message);
    if (!piece) return { events: [] };
    this.#text += piece;
    return { events: [{ type: 'delta', messageId: MESSAGE_ID, text: piece }] };
  }

  end(): AgentEvent[] {
    return [{ type: 'result', messageId: MESSAGE_ID, text: this.#text }];
  }

  state(): unknown {
    return this.#text ? { text: this.#text } : undefined;
  }
}

export const textFormat: RelayFormat = {
  name: 'text',
  idsAreCursors: true,
  create: (_settings, restored) =>
    new PiecesReader((message) => {
      // Plain text has no end of its own: a message the body cut off may be missing its tail.
      if (message.unterminated) throw new AgentError('upstream_incomplete', 'the upstream stream ended in the middle of a message', true);
      return message.data;
    }, restored),
};
