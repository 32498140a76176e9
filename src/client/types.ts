/** The contract's event union, as the client sees it (see API.md). */
export type { RunEvent, RunEventBody, RunState, TerminalState, EventType } from '../events';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What identifies a run to a reader; persisted so a page reload can resume. */
export interface RunHandle {
  requestId: string;
  token: string;
  lastEventId: number;
}

/** Why the client stopped for good. */
export interface ClientError {
  /** The service's error code (e.g. `run_not_found`), or the client's own: `retries_exhausted`, `start_unconfirmed`, `invalid_endpoint`, `client_error`. */
  code: string;
  message: string;
  status?: number;
}
