/**
 * `useAgentRun`: the client library as a React hook. React is an optional
 * peer dependency: this entry is not part of widget.js or client.js.
 *
 * The run survives re-renders (kept in a ref) and remounts and reloads
 * (its handle is in sessionStorage; a remount replays it from the start).
 * Unmounting disconnects; it never cancels the run.
 *
 * @example
 * const { text, state, start, cancel } = useAgentRun({ endpoint: 'https://HOST' });
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AgentRun } from './run';
import type { ClientError, ConnectionState, RunEvent, TerminalState } from './types';

export interface UseAgentRunConfig {
  endpoint: string;
  agent?: string;
  options?: Record<string, unknown>;
  /** sessionStorage key of the run this component follows. @defaultValue `edgestream-react:<endpoint>` */
  persistKey?: string;
  heartbeatMs?: number;
}

export interface AgentRunView {
  events: RunEvent[];
  text: string;
  plan: string[];
  status: { status: string; message: string } | undefined;
  state: ConnectionState;
  runState: TerminalState | undefined;
  error: ClientError | undefined;
  requestId: string | undefined;
  start: (query: string) => void;
  cancel: () => Promise<void>;
  disconnect: () => void;
}

export function useAgentRun(config: UseAgentRunConfig): AgentRunView {
  const { endpoint, agent, heartbeatMs } = config;
  const persistKey = config.persistKey ?? `edgestream-react:${endpoint}`;
  const optionsJson = JSON.stringify(config.options ?? {});
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [state, setState] = useState<ConnectionState>('closed');
  const [clientError, setClientError] = useState<ClientError | undefined>();
  const runRef = useRef<AgentRun | null>(null);

  const follow = useCallback((make: (hooks: { onEvent: (e: RunEvent) => void; onState: (s: ConnectionState) => void }) => AgentRun | null) => {
    runRef.current?.disconnect();
    setEvents([]);
    setClientError(undefined);
    let run: AgentRun | null = null;
    // Callbacks of a run this component no longer follows must not touch its state.
    const current = () => run !== null && runRef.current === run;
    run = make({
      onEvent: (e) => current() && setEvents((prev) => [...prev, e]),
      onState: (s) => {
        if (!current()) return;
        setState(s);
        if (s === 'error') setClientError(run!.error);
      },
    });
    runRef.current = run;
    if (run) setState(run.state);
  }, []);

  useEffect(() => {
    follow((hooks) => AgentRun.restore({ endpoint, persistKey, heartbeatMs, fromStart: true, ...hooks }));
    return () => {
      runRef.current?.disconnect();
      runRef.current = null;
    };
  }, [endpoint, persistKey, heartbeatMs, follow]);

  const start = useCallback(
    (query: string) =>
      follow((hooks) => new AgentRun({ endpoint, persistKey, heartbeatMs, agent, options: JSON.parse(optionsJson), query, ...hooks })),
    [endpoint, persistKey, heartbeatMs, agent, optionsJson, follow],
  );
  const cancel = useCallback(async () => {
    await runRef.current?.cancel();
  }, []);
  const disconnect = useCallback(() => runRef.current?.disconnect(), []);

  return useMemo(() => {
    let text = '';
    let plan: string[] = [];
    let status: AgentRunView['status'];
    let runState: TerminalState | undefined;
    let error = clientError;
    for (const e of events) {
      if (e.type === 'delta') text += e.text;
      else if (e.type === 'plan') plan = e.steps;
      else if (e.type === 'status') status = { status: e.status, message: e.message };
      else if (e.type === 'done') runState = e.state;
      else if (e.type === 'error') error = { code: e.code, message: e.message };
    }
    return { events, text, plan, status, state, runState, error, requestId: runRef.current?.requestId, start, cancel, disconnect };
  }, [events, state, clientError, start, cancel, disconnect]);
}
