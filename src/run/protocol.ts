/**
 * What the Worker and a RunObject say to each other. The Worker has already
 * validated input and checked API keys; the object owns the token check.
 */
import type { ChatMessage } from '../agents/types';
import type { RunError, RunState } from '../events';

export interface StartInput {
  requestId: string;
  agent: string;
  query: string;
  messages: ChatMessage[];
  /** Already validated (and defaulted) by the agent's schema. */
  options: Record<string, unknown>;
}

/** Who is asking: a presented run token and/or a valid API key. */
export interface Caller {
  token?: string;
  apiKey: boolean;
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

export type StartOutcome =
  | { kind: 'created' | 'attached'; token: string; status: RunStatus }
  | { kind: 'exists' }
  /** No such run, and this caller may not create one (API keys are required). */
  | { kind: 'unauthorized' };

/** Headers of the internal stream requests (never from the client directly). */
export const INTERNAL = {
  token: 'x-edgestream-token',
  apiKey: 'x-edgestream-api-key',
  after: 'x-edgestream-after',
  mayCreate: 'x-edgestream-may-create',
} as const;

export function callerHeaders(caller: Caller, afterSeq: number): Record<string, string> {
  const headers: Record<string, string> = { [INTERNAL.after]: String(afterSeq) };
  if (caller.token !== undefined) headers[INTERNAL.token] = caller.token;
  if (caller.apiKey) headers[INTERNAL.apiKey] = '1';
  return headers;
}

export function callerFromHeaders(headers: Headers): { caller: Caller; afterSeq: number } {
  const token = headers.get(INTERNAL.token) ?? undefined;
  return {
    caller: { token, apiKey: headers.get(INTERNAL.apiKey) === '1' },
    afterSeq: Number(headers.get(INTERNAL.after) ?? '0'),
  };
}
