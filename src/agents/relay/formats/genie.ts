/**
 * `genie`: the Java agent service (JD Genie's `POST /AutoAgent`): Spring's
 * SseEmitter sends each `AgentResponse` as `data:{json}` (Jackson; fields
 * may be null), with `data:heartbeat` every 10 s, and no `id:`s, so a run
 * interrupted by a restart cannot be resumed. `SSEPrinter` fills the
 * response by `messageType`:
 *
 * | message | here |
 * | --- | --- |
 * | `heartbeat` (the data, or a `messageType`) | dropped |
 * | `planning` with `planList` | `plan` |
 * | `agent_stream` with `result` (a text chunk) | `delta` (messageId = its `messageId`) |
 * | `result` with `resultMap` (`taskSummary`, `agentType`) and `result` | `result`: text = `result` (else `taskSummary`), data = `resultMap`; with `isFinal` the end |
 * | other types | dropped (SSEPrinter sends them without content) |
 *
 * `isFinal` is the service's "this is the last message" (its web client
 * stops loading on it; null counts as final here, as before). A `result`
 * with `isFinal: false` (a step's summary, in plan-and-solve) is held, not
 * yielded: the run has one final answer, whole, just before `done`. The
 * latest one held is yielded at the final `result`, or when the body ends.
 *
 * When SSEPrinter fails to build the final message it logs and sends
 * nothing, then the emitter completes: a body that ends without a `result`
 * is `upstream_incomplete`.
 */
import type { AgentEvent } from '../../../events';
import {
  MESSAGE_ID,
  incomplete,
  isObject,
  isText,
  messageIdOf,
  notTheFormat,
  parseJson,
  type FormatReader,
  type Mapped,
  type RelayFormat,
  type UpstreamMessage,
} from './format';

class GenieReader implements FormatReader {
  /** The latest `result` not yet yielded (one with `isFinal: false`). */
  #held: AgentEvent | undefined;

  constructor(restored?: unknown) {
    if (isObject(restored) && isObject(restored.held) && restored.held.type === 'result') this.#held = restored.held as AgentEvent;
  }

  read(message: UpstreamMessage): Mapped {
    if (message.data.trim() === 'heartbeat') return { events: [] };
    const response = parseJson(message);
    if (!isObject(response)) throw notTheFormat('genie AgentResponse', 'a message that is not an object');
    const messageId = messageIdOf(response.messageId) ?? MESSAGE_ID;
    switch (response.messageType) {
      case 'planning': {
        const steps = Array.isArray(response.planList) ? response.planList.filter((step: unknown) => typeof step === 'string') : [];
        return { events: steps.length ? [{ type: 'plan', steps }] : [] };
      }
      case 'agent_stream':
        return { events: isText(response.result) ? [{ type: 'delta', messageId, text: response.result }] : [] };
      case 'result': {
        const resultMap = isObject(response.resultMap) ? response.resultMap : null;
        const summary = resultMap?.taskSummary;
        const text = typeof response.result === 'string' ? response.result : summary == null ? '' : String(summary);
        const result: AgentEvent = { type: 'result', messageId, text, data: resultMap };
        if (response.isFinal === false) {
          this.#held = result;
          return { events: [] };
        }
        this.#held = undefined;
        return { events: [result], final: true };
      }
      default:
        return { events: [] };
    }
  }

  end(): AgentEvent[] {
    if (this.#held) return [this.#held];
    throw incomplete('its `result` message');
  }

  state(): unknown {
    return this.#held ? { held: this.#held } : undefined;
  }
}

export const genieFormat: RelayFormat = {
  name: 'genie',
  idsAreCursors: true,
  create: (_settings, restored) => new GenieReader(restored),
};
