/**
 * `relay`: the run calls a deployer-configured upstream SSE backend and
 * writes what it streams into the run's log, so the upstream's output
 * becomes resumable, replayable, cancellable and readable by many.
 *
 * The profile says where and how (settings.ts) and which dialect the
 * upstream speaks (formats/). Each upstream message becomes zero or more
 * events, the same ones every time: after a runtime restart the relay asks
 * the upstream again with `Last-Event-ID` and the run drops the events it
 * already holds by counting them. So nothing here is merged over time.
 */
import * as z from 'zod/mini';
import type { AgentEvent } from '../../events';
import { idleMsFrom } from '../upstream/timeouts';
import { AgentError, type Agent, type AgentCheckpoint, type AgentContext, type AgentInput } from '../types';
import { FORMATS } from './formats';
import { openUpstream } from './request';
import { RelaySettings } from './settings';
import { upstreamMessages } from './stream';

/**
 * No byte from the upstream for this long fails the run. Both services it
 * was built for send heartbeats (10 s, 15 s); an agent may think for a
 * while between messages. RELAY_IDLE_TIMEOUT_MS or a profile's `idleTimeoutMs` overrides.
 */
export const RELAY_IDLE_TIMEOUT_MS = 60_000;
/**
 * A checkpoint whose cursor carries the answer so far (formats that
 * assemble the result themselves) is yielded at most this often: the run
 * stores one at most once a second anyway, and building it costs the
 * answer's length.
 */
export const STATEFUL_CHECKPOINT_MS = 1_000;
/**
 * A cursor longer than this is not yielded (the run stores it in a SQLite
 * row, whose values are limited): a restart then fails the run
 * `interrupted` instead of storing a row that cannot be written.
 */
export const MAX_CURSOR_CHARS = 256 * 1024;

/** No per-run options: what the upstream is asked is the deployer's choice only. */
export const RelayOptions = z.strictObject({});
export type RelayOptions = z.infer<typeof RelayOptions>;

/**
 * What a checkpoint's cursor holds: the upstream's SSE id, the format's
 * state when it has one, and the `startSecret` sent to an upstream that
 * needs one to attach (formats with `startSecret`). The cursor stays in the
 * run's storage: never in an event or a status.
 */
interface Cursor {
  id: string;
  state?: unknown;
  startSecret?: string;
}

export function encodeCursor(cursor: Cursor): string {
  const out: Cursor = { id: cursor.id };
  if (cursor.state !== undefined) out.state = cursor.state;
  if (cursor.startSecret !== undefined) out.startSecret = cursor.startSecret;
  return JSON.stringify(out);
}

/** A start secret (docs/API.md `startSecret`): 64 hex characters, 256 random bits. */
function newStartSecret(): string {
  return [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function decodeCursor(raw: string): Cursor {
  try {
    const parsed = JSON.parse(raw) as Cursor;
    if (typeof parsed?.id === 'string' && (parsed.startSecret === undefined || typeof parsed.startSecret === 'string')) return parsed;
  } catch {
    // not one of ours: below
  }
  throw new AgentError('interrupted', 'the run was interrupted by a restart and its upstream position is unreadable; start it again', true);
}

export const relayAgent: Agent<RelayOptions, RelaySettings> = {
  name: 'relay',
  description: 'Relays an upstream SSE backend (set by the deployer) into a resumable run.',
  options: RelayOptions,
  settings: RelaySettings,
  deterministic: false,
  resumable: true,
  // What a relay needs (its URL, its secrets) is per profile; a missing secret fails the run with agent_not_configured.
  notConfigured: () => null,
  async *run(input: AgentInput<RelayOptions>, signal: AbortSignal, ctx: AgentContext<RelaySettings>) {
    const parsed = RelaySettings.safeParse(ctx.settings ?? {});
    if (!parsed.success) throw new AgentError('agent_misconfigured', 'the relay profile has no valid url and format (see PROFILES)', false);
    const settings = parsed.data;
    const format = FORMATS[settings.format];
    const resumeFrom = ctx.resumeCursor === undefined ? undefined : decodeCursor(ctx.resumeCursor);
    const reader = format.create(settings, resumeFrom?.state);
    const idleMs = settings.idleTimeoutMs ?? idleMsFrom(ctx.env.RELAY_IDLE_TIMEOUT_MS, RELAY_IDLE_TIMEOUT_MS);

    // Resumed, the same secret again: the upstream's run attaches instead of answering 409 run_exists.
    const startSecret = format.startSecret ? (resumeFrom?.startSecret ?? newStartSecret()) : undefined;

    const upstream = await openUpstream(settings, input, ctx.env, signal, idleMs, resumeFrom?.id, startSecret);
    if (!upstream) return;

    const checkpoints = settings.resume && format.idsAreCursors;
    let lastId = resumeFrom?.id;
    let lastStatefulAt = -Infinity;
    let tooBig = false;
    // Events yielded since the cursor: while fewer than ctx.skip, the run
    // still drops them as held, and a checkpoint would claim to cover
    // events that are not there yet (the run counts its log's end).
    let yielded = 0;
    const checkpoint = (id: string | undefined): AgentCheckpoint | null => {
      if (!checkpoints || tooBig || !id || id === lastId || yielded < ctx.skip) return null;
      const state = reader.state?.();
      if (state !== undefined && Date.now() - lastStatefulAt < STATEFUL_CHECKPOINT_MS) return null;
      const cursor = encodeCursor({ id, state, startSecret });
      if (cursor.length > MAX_CURSOR_CHARS) {
        tooBig = true;
        return null;
      }
      if (state !== undefined) lastStatefulAt = Date.now();
      lastId = id;
      return { type: 'checkpoint', cursor };
    };

    for await (const batch of upstreamMessages(upstream.body, signal, idleMs)) {
      for (const message of batch) {
        const { events, final } = reader.read(message);
        for (const event of events) {
          yield event;
          yielded++;
        }
        if (final) return;
        const mark = checkpoint(message.id);
        if (mark) yield mark;
      }
    }
    if (signal.aborted) return;
    const closing: AgentEvent[] = reader.end();
    yield* closing;
  },
};
