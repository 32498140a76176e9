/**
 * `useAgentRun`: the client library as a React hook. React is an optional
 * peer dependency: this entry is not part of widget.js or client.js.
 *
 * The run survives re-renders (kept in a ref), remounts and reloads: the
 * hook keeps the run's {requestId, token} in sessionStorage, also after it
 * finished, and a mount replays it from its first event (runs are kept for
 * the server's RUN_TTL_SECONDS; a run that is gone shows nothing). Unmounting
 * disconnects; it never cancels the run.
 *
 * Events are accumulated in a ref and rendered at most once per animation
 * frame, so a fast stream costs one render per frame, not one per delta.
 *
 * @example
 * const { text, state, start, cancel } = useAgentRun({ endpoint: 'https://HOST' });
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AgentRun, type RunOptions } from './run';
import { clearHandle, loadHandle, saveHandle } from './persist';
import type { ClientError, ConnectionState, RunEvent, TerminalState } from './types';

export interface UseAgentRunConfig {
  endpoint: string;
  agent?: string;
  options?: Record<string, unknown>;
  /** Names this component's stored run, so two components on a page don't share one. @defaultValue the endpoint */
  key?: string;
  /** The whole sessionStorage key (overrides `key`). @defaultValue `edgestream-react:<key>` */
  persistKey?: string;
  heartbeatMs?: number;
}

export interface AgentRunView {
  events: RunEvent[];
  /** The streamed text; a `result` event's text when the agent streamed none. */
  text: string;
  plan: string[];
  status: { status: string; message: string } | undefined;
  state: ConnectionState;
  runState: TerminalState | undefined;
  error: ClientError | undefined;
  requestId: string | undefined;
  /**
   * Start a run. `human`: evidence for an agent with a human check (a start
   * ticket from your backend, or a fresh Turnstile token); see RunOptions.
   */
  start: (query: string, human?: Pick<RunOptions, 'ticket' | 'turnstileToken'>) => void;
  cancel: () => Promise<void>;
  disconnect: () => void;
}

type View = Omit<AgentRunView, 'start' | 'cancel' | 'disconnect'>;

const EMPTY: View = {
  events: [],
  text: '',
  plan: [],
  status: undefined,
  state: 'closed',
  runState: undefined,
  error: undefined,
  requestId: undefined,
};

type Hooks = { onEvent: (e: RunEvent) => void; onState: (s: ConnectionState) => void };

// Outside browsers (tests, SSR) there are no animation frames.
const nextFrame = (f: () => void): number =>
  typeof requestAnimationFrame === 'function' ? requestAnimationFrame(f) : (setTimeout(f, 16) as unknown as number);
const cancelFrame = (id: number) => (typeof cancelAnimationFrame === 'function' ? cancelAnimationFrame(id) : clearTimeout(id));

export function useAgentRun(config: UseAgentRunConfig): AgentRunView {
  const { endpoint, agent, heartbeatMs } = config;
  const persistKey = config.persistKey ?? `edgestream-react:${config.key ?? endpoint}`;
  const optionsJson = JSON.stringify(config.options ?? {});
  const [view, setView] = useState<View>(EMPTY);
  const runRef = useRef<AgentRun | null>(null);
  const frameRef = useRef(0);

  const stop = useCallback(() => {
    cancelFrame(frameRef.current);
    frameRef.current = 0;
    runRef.current?.disconnect();
    runRef.current = null;
  }, []);

  const follow = useCallback(
    (make: (hooks: Hooks) => AgentRun | null, replay = false) => {
      stop();
      // This run's view, built incrementally: each event is looked at once.
      const acc = { ...EMPTY, events: [] as RunEvent[], result: '' };
      let run: AgentRun | null = null;
      // Callbacks of a run this component no longer follows (or after unmount) must not touch its state.
      const current = () => run !== null && runRef.current === run;
      const flush = () => {
        frameRef.current = 0;
        if (!current()) return;
        const { result, ...rest } = acc;
        // One copy of the events per frame (a new array, so React sees the change), not one per event.
        setView({ ...rest, events: acc.events.slice(), text: acc.text || result, state: run!.state, requestId: run!.requestId });
      };
      const schedule = () => {
        if (!frameRef.current) frameRef.current = nextFrame(flush);
      };
      run = make({
        onEvent: (e) => {
          if (!current()) return;
          acc.events.push(e);
          if (e.type === 'delta') acc.text += e.text;
          else if (e.type === 'result') acc.result = e.text;
          else if (e.type === 'plan') acc.plan = e.steps;
          else if (e.type === 'status') acc.status = { status: e.status, message: e.message };
          else if (e.type === 'done') acc.runState = e.state;
          else if (e.type === 'error') acc.error = { code: e.code, message: e.message };
          schedule();
        },
        onState: (s) => {
          if (!current()) return;
          const r = run!;
          // Identified: keep the handle (past `done`) so a remount can replay it.
          if (s === 'open' && r.handle) saveHandle(persistKey, { ...r.handle, lastEventId: 0 });
          if (s === 'error') {
            // A stored run the server no longer has: forget it, quietly.
            if (replay && r.error?.code === 'run_not_found') {
              clearHandle(persistKey);
              runRef.current = null;
              setView(EMPTY);
              return;
            }
            acc.error ??= r.error;
          }
          schedule();
        },
      });
      runRef.current = run;
      setView(run ? { ...EMPTY, state: run.state, requestId: run.requestId } : EMPTY);
    },
    [persistKey, stop],
  );

  useEffect(() => {
    const saved = loadHandle(persistKey);
    follow((hooks) => saved && new AgentRun({ endpoint, heartbeatMs, resume: { ...saved, lastEventId: 0 }, ...hooks }), true);
    return stop;
  }, [endpoint, persistKey, heartbeatMs, follow, stop]);

  const start = useCallback(
    (query: string, human?: Pick<RunOptions, 'ticket' | 'turnstileToken'>) => {
      clearHandle(persistKey); // a remount must not bring back the previous run
      follow((hooks) => new AgentRun({ endpoint, heartbeatMs, agent, options: JSON.parse(optionsJson), query, ...human, ...hooks }));
    },
    [endpoint, persistKey, heartbeatMs, agent, optionsJson, follow],
  );
  const cancel = useCallback(async () => {
    // A run that never started has nothing to cancel; a click must not become an unhandled rejection.
    await runRef.current?.cancel().catch(() => {});
  }, []);
  const disconnect = useCallback(() => runRef.current?.disconnect(), []);

  return useMemo(() => ({ ...view, start, cancel, disconnect }), [view, start, cancel, disconnect]);
}
