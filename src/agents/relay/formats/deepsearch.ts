/**
 * `deepsearch`: the Python search service (`POST /v1/tool/deepsearch`,
 * FastAPI + sse-starlette): `id: <request id>`, `event: data`, `data:
 * {json}` with CRLF line ends, `data: heartbeat` every 15 s. Every message
 * carries the same id (the request's), which is no position: the relay
 * never resumes it, and a restarted run fails `interrupted`.
 *
 * | message | here |
 * | --- | --- |
 * | `heartbeat` | dropped |
 * | `messageType: "status"` with `status`, `message` | `status`; with `search_result` also a `tool` `result` named `search` |
 * | `messageType: "search"`, `isFinal: false`, `answer` (a chunk) | `delta` |
 * | `messageType: "search"`, `isFinal: true`, `answer` (the whole) | `result` (data: `searchResult`): the end |
 * | `messageType: "error"`, or `event: error` | `upstream_error` (its text is not shown) |
 */
import type { AgentEvent } from '../../../events';
import {
  MESSAGE_ID,
  incomplete,
  isObject,
  isText,
  notTheFormat,
  parseJson,
  reportedError,
  type FormatReader,
  type Mapped,
  type RelayFormat,
  type UpstreamMessage,
} from './format';

function read(message: UpstreamMessage): Mapped {
  if (message.data.trim() === 'heartbeat') return { events: [] };
  // `_stream`'s except branch: {"error": str(e), ...}; the text may quote anything.
  if (message.event === 'error') throw reportedError();
  const chunk = parseJson(message);
  if (!isObject(chunk)) throw notTheFormat('deepsearch', 'a message that is not an object');
  switch (chunk.messageType) {
    case 'status': {
      const events: AgentEvent[] = [];
      if (typeof chunk.status === 'string') {
        events.push({ type: 'status', status: chunk.status, message: typeof chunk.message === 'string' ? chunk.message : '' });
      }
      const found = chunk.search_result ?? chunk.searchResult;
      if (found !== undefined && found !== null)
        events.push({ type: 'tool', messageId: 'search', name: 'search', phase: 'result', output: found });
      return { events };
    }
    case 'search':
      if (chunk.isFinal === true) {
        const text = typeof chunk.answer === 'string' ? chunk.answer : '';
        return {
          events: [{ type: 'result', messageId: MESSAGE_ID, text, data: { searchResult: chunk.searchResult ?? null } }],
          final: true,
        };
      }
      return { events: isText(chunk.answer) ? [{ type: 'delta', messageId: MESSAGE_ID, text: chunk.answer }] : [] };
    case 'error':
      throw reportedError();
    default:
      return { events: [] };
  }
}

export const deepsearchFormat: RelayFormat = {
  name: 'deepsearch',
  idsAreCursors: false,
  create: (): FormatReader => ({
    read,
    end() {
      throw incomplete('its final message (`isFinal: true`)');
    },
  }),
};
