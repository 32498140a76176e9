/**
 * The event union of the HTTP contract (API.md, "Event types and their fields"),
 * and the other shapes the Worker and the client library share.
 * Plain types: events are produced inside the service, never parsed from users.
 */

export type RunState = 'running' | 'completed' | 'failed' | 'cancelled';
export type TerminalState = Exclude<RunState, 'running'>;

/** What an agent may emit. `run`, `error` and `done` belong to the run itself. */
export type AgentEvent =
  | { type: 'status'; status: string; message: string }
  | { type: 'plan'; steps: string[] }
  | { type: 'delta'; messageId: string; text: string }
  | {
      type: 'tool';
      messageId: string;
      name: string;
      phase: 'call' | 'result';
      input?: unknown;
      output?: unknown;
    }
  | { type: 'result'; messageId: string; text: string; data?: unknown };

export type RunEventBody =
  | AgentEvent
  | { type: 'run'; agent: string; createdAt: number }
  | { type: 'error'; code: string; message: string; retryable: boolean }
  | { type: 'done'; state: TerminalState };

/** Fields every stored event carries, in the order they are serialised. */
export interface EventEnvelope {
  requestId: string;
  seq: number;
  ts: number;
}

export type RunEvent = EventEnvelope & RunEventBody;
export type EventType = RunEventBody['type'];

/** One earlier turn of a conversation, as `messages` of `POST /v1/runs` carries it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The error a run ended with, as the status endpoint reports it. */
export interface RunError {
  code: string;
  message: string;
  retryable: boolean;
}
