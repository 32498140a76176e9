/**
 * `edgestream`: an upstream speaking this service's own contract (another
 * edgestream, or a backend written to docs/API.md). Its agent events pass
 * through; its `run`, `done`, `seq`, `requestId` and `ts` are its own, and
 * ours replace them. Its SSE ids are its seqs, so it can be resumed: the
 * relay asks again with the same requestId and a `startSecret` it sent with
 * the first request (kept in the checkpoint), so the upstream attaches
 * instead of answering `409 run_exists`.
 *
 * | upstream event | here |
 * | --- | --- |
 * | `status` `plan` `delta` `tool` | the same event (our seq, ts, requestId) |
 * | `result` | held; the latest is yielded at `done` `completed` (the run has one result, just before `done`) |
 * | `error` | the run fails: `upstream_error` (its code shown, its `retryable`) |
 * | `done` `completed` | the end |
 * | `done` `failed` / `cancelled` | `upstream_error` (an upstream run that ended so without `error`) |
 * | `run`, unknown types | dropped |
 */
import * as z from 'zod/mini';
import type { AgentEvent } from '../../../events';
import {
  incomplete,
  isObject,
  notTheFormat,
  parseJson,
  reportedError,
  type FormatReader,
  type Mapped,
  type RelayFormat,
  type UpstreamMessage,
} from './format';

const Event = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('status'), status: z.string(), message: z.string() }),
  z.looseObject({ type: z.literal('plan'), steps: z.array(z.string()) }),
  z.looseObject({ type: z.literal('delta'), messageId: z.string(), text: z.string() }),
  z.looseObject({
    type: z.literal('tool'),
    messageId: z.string(),
    name: z.string(),
    phase: z.enum(['call', 'result']),
    input: z.optional(z.unknown()),
    output: z.optional(z.unknown()),
  }),
  z.looseObject({ type: z.literal('result'), messageId: z.string(), text: z.string(), data: z.optional(z.unknown()) }),
  z.looseObject({ type: z.literal('error'), code: z.optional(z.unknown()), retryable: z.optional(z.unknown()) }),
  z.looseObject({ type: z.literal('done'), state: z.string() }),
]);

const PASSED = new Set(['status', 'plan', 'delta', 'tool', 'result', 'error', 'done']);

/** The fields of an agent event, without the upstream's envelope. */
function ours(event: z.infer<typeof Event>): AgentEvent | null {
  switch (event.type) {
    case 'status':
      return { type: 'status', status: event.status, message: event.message };
    case 'plan':
      return { type: 'plan', steps: event.steps };
    case 'delta':
      return event.text ? { type: 'delta', messageId: event.messageId, text: event.text } : null;
    case 'tool': {
      const tool: AgentEvent = { type: 'tool', messageId: event.messageId, name: event.name, phase: event.phase };
      if (event.input !== undefined) tool.input = event.input;
      if (event.output !== undefined) tool.output = event.output;
      return tool;
    }
    case 'result':
      return event.data === undefined
        ? { type: 'result', messageId: event.messageId, text: event.text }
        : { type: 'result', messageId: event.messageId, text: event.text, data: event.data };
    default:
      return null;
  }
}

class EdgestreamReader implements FormatReader {
  /** The latest `result`: yielded at `done`, so one, whatever the upstream sent after it. */
  #held: AgentEvent | undefined;

  constructor(restored?: unknown) {
    if (isObject(restored) && isObject(restored.held) && restored.held.type === 'result') this.#held = restored.held as AgentEvent;
  }

  read(message: UpstreamMessage): Mapped {
    const json = parseJson(message);
    const fields = isObject(json) ? json : {};
    const type = fields.type ?? message.event;
    if (typeof type !== 'string' || !PASSED.has(type)) return { events: [] }; // `run`, and types of a later contract
    const parsed = Event.safeParse({ ...fields, type });
    if (!parsed.success) throw notTheFormat('edgestream', `a "${type}" event without its fields`);
    const event = parsed.data;
    if (event.type === 'error') throw reportedError(event.code, event.retryable !== false);
    if (event.type === 'done') {
      if (event.state === 'completed') return { events: this.#held ? [this.#held] : [], final: true };
      throw reportedError(`run_${event.state}`.slice(0, 64), true);
    }
    const mapped = ours(event);
    if (mapped?.type === 'result') {
      this.#held = mapped;
      return { events: [] };
    }
    return { events: mapped ? [mapped] : [] };
  }

  end(): AgentEvent[] {
    throw incomplete('its `done` event');
  }

  state(): unknown {
    return this.#held ? { held: this.#held } : undefined;
  }
}

export const edgestreamFormat: RelayFormat = {
  name: 'edgestream',
  idsAreCursors: true,
  startSecret: true,
  create: (_settings, restored) => new EdgestreamReader(restored),
};
