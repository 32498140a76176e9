/**
 * The seam between a run and whatever produces its output. A run owns
 * sequencing, storage, errors and `done`; an agent only yields events.
 */
import type * as z from 'zod/mini';
import type { AgentEvent, ChatMessage } from '../events';
import type { AppEnv } from '../env';

export type { ChatMessage } from '../events';

export interface AgentInput<Options = Record<string, unknown>> {
  requestId: string;
  query: string;
  messages: ChatMessage[];
  options: Options;
}

export interface AgentContext<Settings = Record<string, unknown>> {
  env: AppEnv;
  /** The deployer's settings from the run's profile (validated by the agent's `settings`); absent without any. */
  settings?: Settings;
  /**
   * For agents resuming after a restart: the number of events the log
   * already holds from this agent (after `resumeCursor`, when given). The
   * agent may skip the work (and the waiting) for them; the run drops that
   * many events either way.
   */
  skip: number;
  /**
   * For a `resumable` agent restarted after a runtime restart: the cursor of
   * its last stored checkpoint. It continues from there (e.g. an upstream
   * SSE stream resumed with `Last-Event-ID: <cursor>`), yielding again what
   * followed the cursor; the run drops the `skip` events it already holds.
   */
  resumeCursor?: string;
}

export interface Agent<Options = Record<string, unknown>, Settings = Record<string, unknown>> {
  name: string;
  description: string;
  /** Validates `options` of `POST /v1/runs`; its errors become `400 invalid_request`. */
  options: z.ZodMiniType<Options>;
  /**
   * What a deployer may set in a profile beyond the common keys (a relay's
   * URL and headers, say), validated when PROFILES is read and never taken
   * from a client. Without it, such keys are a configuration error.
   */
  settings?: z.ZodMiniType<Settings>;
  /**
   * True when running it again with the same input yields the same events,
   * so a run interrupted by a restart can resume instead of failing.
   */
  deterministic: boolean;
  /**
   * True when it yields `checkpoint`s and can continue from one after a
   * restart (`ctx.resumeCursor`). A run restarted before its first
   * checkpoint is failed `interrupted`, as for any other agent.
   */
  resumable?: boolean;
  /** Why it cannot run here (missing key or binding), or null when it can. */
  notConfigured(env: AppEnv): string | null;
  /**
   * Produce the run's events. Abort `signal` on cancel or deadline; the agent
   * must stop promptly (abort upstream requests). Throw `AgentError` to fail.
   */
  run(input: AgentInput<Options>, signal: AbortSignal, ctx: AgentContext<Settings>): AsyncIterable<AgentEvent | AgentCheckpoint>;
}

/**
 * Any agent, as the registry, the profiles and the run hold them: options and
 * settings are JSON objects whose fields only the agent itself knows. They
 * reach `run` only as the agent's own `options` and `settings` schemas parsed
 * them (profiles/profile.ts and profiles/resolve.ts do that before a run
 * starts), so outside the agent each field is `unknown`, and
 * `agent.settings?.safeParse(...)` yields such an object, not `any`.
 */
export type AnyAgent = Agent<Record<string, unknown>, Record<string, unknown>>;

/**
 * Not an event: "everything yielded before this is covered by `cursor`" (an
 * upstream's SSE id, say). The run stores the cursor with the events it
 * covers, so a restarted `resumable` agent continues exactly where its log ends.
 */
export interface AgentCheckpoint {
  type: 'checkpoint';
  cursor: string;
}

/** A failure an agent reports on purpose; becomes the run's `error` event. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
