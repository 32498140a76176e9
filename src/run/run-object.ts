/**
 * RunObject: one Durable Object per run. It owns the run's state, its secret
 * token and its event log, runs the agent, and serves any number of readers.
 *
 * Lifecycle: start -> `run` event, agent events... -> exactly one `done`
 * (completed / failed / cancelled). The agent runs detached from readers.
 * One alarm does two jobs: while running, it fires at the deadline or every
 * WATCHDOG_MS so a restarted runtime picks the run up again; once ended, it
 * fires at the TTL and deletes everything.
 */
import { DurableObject } from 'cloudflare:workers';
import { getAgent } from '../agents/registry';
import { AgentError, type Agent } from '../agents/types';
import { getConfig, type Config } from '../config';
import type { AppEnv } from '../env';
import type { RunError, RunEventBody, RunState, TerminalState } from '../events';
import { encodeEvent } from '../sse/encode';
import { SSE_HEADERS, openReader } from '../sse/stream';
import { EventLog } from './event-log';
import { INTERNAL, callerFromHeaders, type Caller, type RunStatus, type StartInput, type StartOutcome } from './protocol';
import { newToken, tokensEqual } from './token';

/** While running, the alarm fires at least this often so a restart is noticed without any request. */
export const WATCHDOG_MS = 15_000;
/** A reader whose single write has not completed for this long is dropped. */
export const READER_STALL_MS = 60_000;

interface RunMeta {
  requestId: string;
  agent: string;
  input: StartInput;
  token: string;
  state: RunState;
  createdAt: number;
  deadlineAt: number;
  finishedAt: number | null;
  error: RunError | null;
}

type MetaRow = {
  request_id: string;
  agent: string;
  input: string;
  token: string;
  state: string;
  created_at: number;
  deadline_at: number;
  finished_at: number | null;
  error: string | null;
};

export class RunObject extends DurableObject<AppEnv> {
  #config: Config;
  /** Null until the run exists: an object asked about an unknown id writes nothing. */
  #log: EventLog | null = null;
  #meta: RunMeta | null = null;
  /** Aborts the agent of this isolate; null when no agent runs here. */
  #agentAbort: AbortController | null = null;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.#config = getConfig(env);
    // SQLite calls are synchronous: loading needs no input gate. Only a run
    // left "running" by a dead isolate needs async work before any request.
    this.#load();
    if (this.#meta?.state === 'running') void ctx.blockConcurrencyWhile(() => this.#recover());
  }

  // ---- entry points ------------------------------------------------------

  /** Streams: `GET /events` (read or resume), `POST /start` (start or attach, then stream). */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const { caller, afterSeq } = callerFromHeaders(request.headers);
    if (request.method === 'POST' && url.pathname === '/start') {
      const input = (await request.json()) as StartInput;
      const outcome = await this.start(input, caller, request.headers.get(INTERNAL.mayCreate) !== '0');
      if (outcome.kind === 'exists') return new Response(null, { status: 409 });
      if (outcome.kind === 'unauthorized') return new Response(null, { status: 401 });
      return this.#stream(afterSeq, {
        'X-Request-Id': outcome.status.requestId,
        'X-Run-Token': outcome.token,
      });
    }
    if (request.method === 'GET' && url.pathname === '/events') {
      if (!(await this.#authorized(caller))) return new Response(null, { status: 404 });
      return this.#stream(afterSeq, {});
    }
    return new Response(null, { status: 404 });
  }

  /** Start the run, or attach to it when it exists and the caller may. */
  async start(input: StartInput, caller: Caller, mayCreate: boolean): Promise<StartOutcome> {
    if (this.#meta) {
      if (!(await this.#authorized(caller))) return { kind: 'exists' };
      return { kind: 'attached', token: this.#meta.token, status: this.#status() };
    }
    if (!mayCreate) return { kind: 'unauthorized' };
    const agent = getAgent(input.agent);
    if (!agent) throw new Error(`unknown agent ${input.agent}`); // the route checked; a bug if reached
    const now = Date.now();
    this.#createTables();
    const meta: RunMeta = {
      requestId: input.requestId,
      agent: input.agent,
      input,
      token: newToken(),
      state: 'running',
      createdAt: now,
      deadlineAt: now + this.#config.MAX_RUN_SECONDS * 1000,
      finishedAt: null,
      error: null,
    };
    this.ctx.storage.sql.exec(
      `INSERT INTO run (id, request_id, agent, input, token, state, created_at, deadline_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?)`,
      meta.requestId,
      meta.agent,
      JSON.stringify(input),
      meta.token,
      meta.state,
      meta.createdAt,
      meta.deadlineAt,
    );
    this.#meta = meta;
    this.#log = new EventLog(this.ctx.storage.sql);
    this.#append({ type: 'run', agent: meta.agent, createdAt: meta.createdAt });
    // Store seq 1 now: the first event should not wait for the batch timer.
    this.#events.flush();
    await this.#scheduleAlarm();
    this.#startAgent(agent, 0);
    return { kind: 'created', token: meta.token, status: this.#status() };
  }

  /** The run's status, or null when it does not exist or the caller may not see it. */
  async status(caller: Caller): Promise<RunStatus | null> {
    if (!(await this.#authorized(caller))) return null;
    return this.#status();
  }

  /** Cancel a running run. `changed` is false when it had already ended. */
  async cancel(caller: Caller): Promise<{ changed: boolean; status: RunStatus } | null> {
    if (!(await this.#authorized(caller))) return null;
    const changed = this.#meta!.state === 'running';
    if (changed) await this.#finish('cancelled', null);
    return { changed, status: this.#status() };
  }

  override async alarm(): Promise<void> {
    // Storage is the source of truth for the times an alarm acts on (an
    // operator may have edited them); refresh them before deciding.
    const meta = this.#meta;
    const stored = meta ? this.#readMeta() : null;
    if (!meta || !stored) return;
    meta.deadlineAt = stored.deadlineAt;
    meta.finishedAt = stored.finishedAt;
    const now = Date.now();
    if (meta.state === 'running') {
      if (now >= meta.deadlineAt) {
        await this.#finish('failed', this.#deadlineError());
      } else {
        await this.#scheduleAlarm();
      }
      return;
    }
    if (meta.finishedAt !== null && now >= meta.finishedAt + this.#config.RUN_TTL_SECONDS * 1000) {
      await this.#delete();
    } else {
      await this.#scheduleAlarm();
    }
  }

  // ---- internals ---------------------------------------------------------

  /**
   * Read the run, if there is one. Only reads: a request for an id that was
   * never started (or whose run was deleted) must not leave storage behind.
   */
  #load(): void {
    const exists = this.ctx.storage.sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'")
      .toArray().length > 0;
    this.#meta = exists ? this.#readMeta() : null;
    this.#log = this.#meta ? new EventLog(this.ctx.storage.sql) : null;
  }

  #createTables(): void {
    this.ctx.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS run (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         request_id  TEXT NOT NULL,
         agent       TEXT NOT NULL,
         input       TEXT NOT NULL,
         token       TEXT NOT NULL,
         state       TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         deadline_at INTEGER NOT NULL,
         finished_at INTEGER,
         error       TEXT
       )`,
    );
  }

  #readMeta(): RunMeta | null {
    const row = this.ctx.storage.sql.exec<MetaRow>('SELECT * FROM run WHERE id = 1').toArray()[0];
    if (!row) return null;
    return {
      requestId: row.request_id,
      agent: row.agent,
      input: JSON.parse(row.input) as StartInput,
      token: row.token,
      state: row.state as RunState,
      createdAt: row.created_at,
      deadlineAt: row.deadline_at,
      finishedAt: row.finished_at,
      error: row.error ? (JSON.parse(row.error) as RunError) : null,
    };
  }

  /**
   * The object was constructed while its run is marked running: the isolate
   * that ran the agent is gone (restart, eviction, crash). A deterministic
   * agent is replayed past what the log holds; any other run is failed.
   */
  async #recover(): Promise<void> {
    const meta = this.#meta!;
    const agent = getAgent(meta.agent);
    const lastEvent = this.#events.durableSeq;
    if (Date.now() >= meta.deadlineAt) {
      await this.#finish('failed', this.#deadlineError());
      return;
    }
    if (agent?.deterministic) {
      // seq 1 is the `run` event; the agent produced the rest.
      this.#startAgent(agent, lastEvent - 1);
      await this.#scheduleAlarm();
      return;
    }
    await this.#finish('failed', {
      code: 'interrupted',
      message: 'the run was interrupted by a restart of the runtime; start it again',
      retryable: true,
    });
  }

  #deadlineError(): RunError {
    return {
      code: 'deadline_exceeded',
      message: `the run passed its deadline of ${this.#config.MAX_RUN_SECONDS} s`,
      retryable: false,
    };
  }

  /** The log of an existing run (every caller has checked that the run exists). */
  get #events(): EventLog {
    if (!this.#log) throw new Error('no run here'); // a bug if reached
    return this.#log;
  }

  #startAgent(agent: Agent<any>, skip: number): void {
    const abort = new AbortController();
    this.#agentAbort = abort;
    const input = this.#meta!.input;
    void this.#drive(agent, input, abort, skip);
  }

  /** Pull the agent's events into the log until it ends, fails or is aborted. */
  async #drive(agent: Agent<any>, input: StartInput, abort: AbortController, skip: number): Promise<void> {
    let skipped = 0;
    try {
      const events = agent.run(
        { requestId: input.requestId, query: input.query, messages: input.messages, options: input.options },
        abort.signal,
        { env: this.env, skip },
      );
      for await (const event of events) {
        if (abort.signal.aborted) return; // cancel or deadline already wrote `done`
        if (skipped < skip) {
          skipped++;
          continue;
        }
        this.#append(event);
      }
      if (!abort.signal.aborted) await this.#finish('completed', null);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err instanceof AgentError) {
        await this.#finish('failed', { code: err.code, message: err.message, retryable: err.retryable });
      } else {
        // Unexpected: log the kind only; a message could carry upstream URLs or keys.
        console.error(`run ${input.requestId}: agent ${agent.name} threw ${(err as Error)?.name ?? typeof err}`);
        await this.#finish('failed', { code: 'agent_error', message: 'the agent failed unexpectedly', retryable: true });
      }
    }
  }

  #append(body: RunEventBody): void {
    const meta = this.#meta!;
    const log = this.#events;
    const seq = log.nextSeq;
    const frame = encodeEvent({ requestId: meta.requestId, seq, ts: Date.now(), ...body } as never);
    log.append(seq, frame);
  }

  /** End the run exactly once: optional `error`, then `done`, stored before anyone sees them. */
  async #finish(state: TerminalState, error: RunError | null): Promise<void> {
    const meta = this.#meta!;
    if (meta.state !== 'running') return;
    this.#agentAbort?.abort();
    this.#agentAbort = null;
    if (error) this.#append({ type: 'error', ...error });
    this.#append({ type: 'done', state });
    const now = Date.now();
    meta.state = state;
    meta.finishedAt = now;
    meta.error = error;
    this.ctx.storage.sql.exec(
      'UPDATE run SET state = ?, finished_at = ?, error = ? WHERE id = 1',
      state,
      now,
      error ? JSON.stringify(error) : null,
    );
    this.#events.flush();
    await this.#scheduleAlarm();
  }

  async #scheduleAlarm(): Promise<void> {
    const meta = this.#meta;
    if (!meta) return;
    const at =
      meta.state === 'running'
        ? Math.min(meta.deadlineAt, Date.now() + WATCHDOG_MS)
        : meta.finishedAt! + this.#config.RUN_TTL_SECONDS * 1000;
    await this.ctx.storage.setAlarm(at);
  }

  async #delete(): Promise<void> {
    await this.ctx.storage.deleteAll();
    const old = this.#log;
    this.#meta = null;
    this.#log = null;
    // Readers of the old log, waiting or mid-replay, see nothing more and close.
    old?.close();
  }

  async #authorized(caller: Caller): Promise<boolean> {
    const meta = this.#meta;
    if (!meta) return false;
    if (caller.apiKey) return true;
    if (caller.token === undefined) return false;
    return tokensEqual(caller.token, meta.token);
  }

  #status(): RunStatus {
    const meta = this.#meta!;
    const status: RunStatus = {
      requestId: meta.requestId,
      agent: meta.agent,
      state: meta.state,
      lastEventId: this.#events.durableSeq,
      createdAt: meta.createdAt,
    };
    if (meta.finishedAt !== null) status.finishedAt = meta.finishedAt;
    if (meta.error) status.error = meta.error;
    return status;
  }

  #stream(afterSeq: number, extraHeaders: Record<string, string>): Response {
    const meta = this.#meta!;
    const log = this.#events;
    if (meta.state !== 'running' && afterSeq >= log.durableSeq) {
      // [spec] a 204 tells EventSource to stop reconnecting: nothing can follow.
      return new Response(null, { status: 204, headers: extraHeaders });
    }
    const body = openReader({
      log,
      afterSeq,
      retryMs: this.#config.RETRY_MS,
      heartbeatMs: this.#config.HEARTBEAT_MS,
      stallMs: READER_STALL_MS,
      ended: () => this.#meta?.state !== 'running',
      // After the TTL deletion `#load` makes a fresh log; this reader's run is gone.
      gone: () => this.#log !== log,
    });
    return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...extraHeaders } });
  }
}
