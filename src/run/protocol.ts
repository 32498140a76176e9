/**
 * What the Worker and a RunObject say to each other, over typed RPC only
 * (src/run/run-stub.ts is the Worker's side). The Worker has already
 * validated input and checked API keys; the object owns the token check.
 */
import type { ChatMessage } from '../agents/types';
import type { RunError, RunEventBody, RunState, TerminalState } from '../events';
import type { UsageLimits } from '../limits/usage';

/** What a run is started with; stored in the run's row (so never a secret). */
export interface StartInput {
  requestId: string;
  /** The profile asked for: what the `run` event and the status call `agent`. Absent in runs from before profiles. */
  profile?: string;
  /** The implementation that runs it (`demo`, `openai`, `workers-ai`). */
  agent: string;
  query: string;
  messages: ChatMessage[];
  /** Already resolved by the profile and validated by the agent's schema. */
  options: Record<string, unknown>;
  /** The profile's deployer settings for the agent (never a client's); absent when it has none. */
  settings?: Record<string, unknown>;
  /** The run's deadline: the profile's, else MAX_RUN_SECONDS (absent in runs from before profiles). */
  maxRunSeconds?: number;
}

/**
 * What creating or attaching needs beyond the input, and is never stored as
 * is: the caller's start secret, a token minted by the Worker (which holds
 * TOKEN_SECRET), and who the run's usage is charged to, under which limits.
 * The Worker decides all of it from the deployment's configuration, so the
 * run's object needs none.
 */
export interface CreateChecks {
  startSecret?: string;
  /** The token the run gets if this call creates it, or attaches by API key or start secret. */
  newToken: string;
  /** The client the run's usage counts against, and its limits; absent for trusted and loopback callers. */
  usage?: { client: string; limits: UsageLimits };
}

/** Who is asking: a presented run token and/or a valid API key. */
export interface Caller {
  token?: string;
  apiKey: boolean;
  /** Anonymous and not loopback: at most this many readers of the run may be open for it to get one. */
  maxReaders?: number;
}

/** A refusal the run's object decided (the usage limits); the route answers it as is. */
export interface Refusal {
  code: 'rate_limited' | 'quota_exceeded';
  message: string;
  retryAfterS?: number;
}

export interface RunStatus {
  requestId: string;
  agent: string;
  state: RunState;
  lastEventId: number;
  createdAt: number;
  finishedAt?: number;
  error?: RunError;
}

/** A start that created the run or attached to it: the token it opens with, and where it stands. */
export interface Opened {
  token: string;
  status: RunStatus;
}

export type StartOutcome = ({ kind: 'created' } & Opened) | ({ kind: 'attached' } & Opened) | StartDenied;

/** A start that neither created nor attached. */
export type StartDenied =
  | { kind: 'exists' }
  | { kind: 'refused'; refusal: Refusal }
  /** No such run, and this caller may not create one (API keys are required). */
  | { kind: 'unauthorized' };

/**
 * A reader's stream, or why there is none. The body crosses the RPC
 * boundary as a ReadableStream; the Worker adds the HTTP framing.
 */
export type ReadOutcome =
  | { kind: 'stream'; body: ReadableStream<Uint8Array> }
  /** The run has ended and the reader has its last event: nothing can follow. */
  | { kind: 'no_content' }
  | { kind: 'refused'; refusal: Refusal }
  /** No such run, or the caller may not read it. */
  | { kind: 'not_found' };

/** A start that streams: the start's outcome and, once created or attached, the reader's. */
export type StartStreamOutcome =
  | ({ kind: 'created' | 'attached'; read: Exclude<ReadOutcome, { kind: 'not_found' }> } & Opened)
  | StartDenied;

/** What a start asks of the run's object. */
export interface StartRequest {
  input: StartInput;
  checks: CreateChecks;
  /** True only when this caller may create the run; anything else only attaches (deny by default). */
  mayCreate: boolean;
}

/** A producer's identity and position, from the `Producer-Id`, `Producer-Epoch` and `Producer-Seq` headers. */
export interface ProducerPosition {
  id: string;
  epoch: number;
  seq: number;
}

/**
 * What a producer may append: any event but `run`, which belongs to the run.
 * The route has checked the order: an `error` only right before a `done`
 * `failed`, and nothing after a `done`.
 */
export type AppendEvent = Exclude<RunEventBody, { type: 'run' }>;

/** The end an append may carry, taken off its events by the run. */
export interface AppendEnd {
  state: TerminalState;
  error: RunError | null;
}

export type AppendOutcome =
  /**
   * Stored, or a repeat of an acknowledged append (`duplicate`). The seqs
   * are those the events got; a repeat of an append older than the
   * producer's last one has none (the run keeps each producer's last only).
   */
  | { kind: 'appended'; duplicate: boolean; firstSeq?: number; lastSeq?: number; epoch: number; producerSeq: number }
  /** No such run (or the caller may not write to it). */
  | { kind: 'not_found' }
  /** The run's events come from its agent. */
  | { kind: 'not_external'; agent: string }
  | { kind: 'ended'; state: TerminalState }
  /** A newer epoch of this producer has written: this one is fenced off. */
  | { kind: 'fenced'; currentEpoch: number }
  /** Not the next seq: `expectedSeq` is. */
  | { kind: 'gap'; expectedSeq: number; receivedSeq: number }
  /** Storage refused it: nothing was stored, the producer's position did not move. */
  | { kind: 'not_stored' };
