/**
 * The Worker's side of the boundary to a run's Durable Object. Every call
 * is typed RPC (the types are in ./protocol.ts; streams come back as a
 * ReadableStream inside the outcome), and every call is retried when the
 * runtime says it failed for a passing reason (see ../lib/retry.ts). Each
 * of these calls is safe to repeat:
 * - a start is idempotent by requestId: a retry presents the token the
 *   Worker minted for it, so a start whose answer was lost attaches to the
 *   run it created instead of being told the run exists;
 * - reads, status and cancel change nothing a repeat would change again;
 * - an append is idempotent per producer (a repeat is acknowledged as a
 *   duplicate and stored once).
 * A stream, once returned, is never retried: its reader resumes with
 * Last-Event-ID.
 */
import type { AppEnv } from '../env';
import { withRetry } from '../lib/retry';
import type {
  AppendEvent,
  AppendOutcome,
  Caller,
  ProducerPosition,
  ReadOutcome,
  RunStatus,
  StartOutcome,
  StartRequest,
  StartStreamOutcome,
} from './protocol';

export interface RunStub {
  /** Start the run or attach to it; `request.mayCreate` must be true to create. */
  start(request: StartRequest, caller: Caller): Promise<StartOutcome>;
  /** The same, then a reader of its events after `afterSeq`. */
  startStream(request: StartRequest, caller: Caller, afterSeq: number): Promise<StartStreamOutcome>;
  /** A reader of the run's events after `afterSeq`. */
  read(caller: Caller, afterSeq: number): Promise<ReadOutcome>;
  /** Null when there is no such run or the caller may not see it. */
  status(caller: Caller): Promise<RunStatus | null>;
  cancel(caller: Caller): Promise<{ changed: boolean; status: RunStatus } | null>;
  append(caller: Caller, producer: ProducerPosition, events: AppendEvent[]): Promise<AppendOutcome>;
}

/**
 * The run `requestId`'s object, as the Worker calls it.
 * @example const outcome = await runStub(env, requestId).status(caller);
 */
export function runStub(env: AppEnv, requestId: string): RunStub {
  // A fresh stub per attempt: after an exception a stub may stay broken.
  const object = () => env.RUNS.get(env.RUNS.idFromName(requestId));
  return {
    start: (request, caller) =>
      withRetry<StartOutcome>((attempt) =>
        object().start(request.input, startCaller(request, caller, attempt), request.mayCreate, request.checks),
      ),
    startStream: (request, caller, afterSeq) =>
      withRetry<StartStreamOutcome>((attempt) => object().startStream(request, startCaller(request, caller, attempt), afterSeq)),
    read: (caller, afterSeq) => withRetry<ReadOutcome>(() => object().read(caller, afterSeq)),
    status: (caller) => withRetry<RunStatus | null>(() => object().status(caller)),
    cancel: (caller) => withRetry<{ changed: boolean; status: RunStatus } | null>(() => object().cancel(caller)),
    append: (caller, producer, events) => withRetry<AppendOutcome>(() => object().append(caller, producer, events)),
  };
}

/**
 * Who a start's attempt speaks for. A retry of an anonymous start carries
 * the token minted for this request: if the failed attempt did create the
 * run, the retry attaches with it (the run holds its hash) and answers with
 * the same token; if it did not, the retry creates the run as the first
 * would have. A caller with a token or an API key attaches the same way on
 * every attempt.
 */
function startCaller(request: StartRequest, caller: Caller, attempt: number): Caller {
  if (attempt === 0 || caller.token !== undefined || caller.apiKey) return caller;
  return { ...caller, token: request.checks.newToken };
}
