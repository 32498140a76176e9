/** The contract's event union, as the client sees it (see API.md). */
export type { ChatMessage, RunEvent, RunEventBody, RunState, TerminalState, EventType } from '../events';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'error';

/**
 * What identifies a run to a reader; persisted so a page reload can resume.
 * Never the start's `startSecret`: once the run is identified, the token opens it.
 */
export interface RunHandle {
  requestId: string;
  token: string;
  lastEventId: number;
}

/** Why the client stopped for good. */
export interface ClientError {
  /**
   * The service's error code (e.g. `run_not_found`, or `human_check_failed`
   * when the agent needs a start ticket or a Turnstile token and none valid
   * was sent), or the client's own:
   * `retries_exhausted`, `invalid_endpoint`, `client_error`,
   * `start_unconfirmed` (a start's answer was lost, and its retry met a run
   * with that requestId that this start's `startSecret` does not open), and
   * `origin_not_allowed` (in a browser: the endpoint is up but its CORS
   * settings, `ALLOWED_ORIGINS`, do not include this page's origin).
   */
  code: string;
  message: string;
  status?: number;
}
