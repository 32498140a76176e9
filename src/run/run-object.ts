/**
 * RunObject: one Durable Object per run. It owns the run's state, its secret
 * token and its event log, runs the agent, and serves any number of readers.
 *
 * Lifecycle: start -> `run` event, agent events... -> exactly one `done`
 * (completed / failed / cancelled). The agent runs detached from readers.
 * An external run's events come from producers instead (`append`): each
 * append is stored with the producer's new position in one transaction, and
 * a run with no append for its lease fails by alarm.
 * One alarm does two jobs: while running, it fires at the deadline or every
 * WATCHDOG_MS so a restarted runtime picks the run up again; once ended, it
 * fires at the TTL and deletes everything.
 */
import { DurableObject } from 'cloudflare:workers';
import { isExternalRun, leaseMs } from '../agents/external/external';
import { getAgent } from '../agents/registry';
import { AgentError, type AnyAgent } from '../agents/types';
import { getConfig, type Config } from '../config';
import type { AppEnv } from '../env';
import type { RunError, RunEventBody, RunState, TerminalState } from '../events';
import { encodeEvent } from '../sse/encode';
import { openReader } from '../sse/stream';
import { admitRun, chargeInterval, chargeRun, estimateTokens, releaseRun, tokensFromUsage, type UsageLimits } from '../limits/usage';
import { EventLog } from './event-log';
import type {
  AppendEnd,
  AppendEvent,
  AppendOutcome,
  Caller,
  CreateChecks,
  ProducerPosition,
  ReadOutcome,
  RunStatus,
  StartInput,
  StartOutcome,
  StartRequest,
  StartStreamOutcome,
} from './protocol';
import { hashSecret, matchesHash, tokensEqual } from './token';

/** While running, the alarm fires at least this often so a restart is noticed without any request. */
export const WATCHDOG_MS = 15_000;
/** A reader whose single write has not completed for this long is dropped. */
export const READER_STALL_MS = 60_000;
/**
 * Tokens a run keeps: the first, plus one minted per attach by API key or
 * start secret (the service stores only hashes, so it cannot hand the first
 * one out again). Beyond this the oldest minted one is dropped.
 */
const MAX_TOKENS = 16;
/** A reader refused for the per-run cap retries after this long: readers of a run come and go in seconds. */
const READERS_RETRY_AFTER_S = 5;
/**
 * A resumable agent's checkpoint is stored at most this often (with the log
 * rows of a flush): a later stored cursor only means more of the upstream is
 * asked for again after a restart, and dropped as already held.
 */
const CURSOR_EVERY_MS = 1_000;
/** How a run ends when its own output could not be stored. */
const STORAGE_FAILED: RunError = {
  code: 'storage_failed',
  message: "the run's output could not be stored; start it again",
  retryable: true,
};

interface RunMeta {
  requestId: string;
  /** The profile name shown in the `run` event and the status. */
  agent: string;
  input: StartInput;
  /** `sha256:` hashes of the tokens that open the run; a plain token in runs stored before hashing. */
  tokens: string[];
  startSecret: string | null;
  /** Who the run's usage is charged to; null when nobody's budget applies. */
  client: string | null;
  /** The budgets the run was admitted under, for its charges as it goes; null for runs stored before them. */
  limits: UsageLimits | null;
  state: RunState;
  createdAt: number;
  deadlineAt: number;
  finishedAt: number | null;
  error: RunError | null;
}

/** A producer's row: its epoch, the last seq it had acknowledged, the log seqs that append got, and when. */
type ProducerRow = {
  producer_id: string;
  epoch: number;
  seq: number;
  first_seq: number;
  last_seq: number;
  acked_at: number;
};

type MetaRow = {
  request_id: string;
  agent: string;
  input: string;
  token: string;
  start_secret?: string | null;
  client?: string | null;
  usage_limits?: string | null;
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
  /** A start being decided (checks are awaited): a second start waits for it instead of creating twice. */
  #starting: Promise<unknown> | null = null;
  /** Readers of limited (anonymous, not loopback) callers open in this isolate, for the per-run reader limit. */
  #limitedReaders = 0;
  /** Output characters of the agent, for a token estimate when the model reports no usage. */
  #outputChars = 0;
  /** Tokens the model reported in its `result` (null: not reported). */
  #reportedTokens: number | null = null;
  /** The newest checkpoint of a resumable agent and the last seq it covers, until stored. */
  #cursor: { cursor: string; seq: number } | null = null;
  #cursorStoredAt = 0;
  /** An end that storage refused, for the watchdog alarm to store. */
  #unfinished: { state: TerminalState; error: RunError } | null = null;
  /** Characters of the run's input (query and messages), for the token estimate; null until counted. */
  #inputChars: number | null = null;
  /** The log's rows written in this isolate and the run's tokens when it was last charged (see #maybeCharge). */
  #chargedAt = { rows: 0, tokens: 0 };
  /** The charge in flight, if any: at most one at a time. */
  #charging: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    this.#config = getConfig(env);
    // SQLite calls are synchronous: loading needs no input gate. Only a run
    // left "running" by a dead isolate needs async work before any request.
    this.#load();
    if (this.#meta?.state === 'running') void ctx.blockConcurrencyWhile(() => this.#recover());
  }

  // ---- entry points ------------------------------------------------------

  /**
   * Start or attach (as `start`), then open a reader after `afterSeq`: the
   * answer to a `POST /v1/runs` that asks for the stream.
   */
  async startStream(request: StartRequest, caller: Caller, afterSeq: number): Promise<StartStreamOutcome> {
    const outcome = await this.start(request.input, caller, request.mayCreate === true, request.checks);
    if (outcome.kind === 'created' || outcome.kind === 'attached') return { ...outcome, read: this.#read(afterSeq, caller) };
    return outcome;
  }

  /** A reader of the run's events after `afterSeq` (a first read, or a resume with Last-Event-ID). */
  async read(caller: Caller, afterSeq: number): Promise<ReadOutcome> {
    if (!(await this.#authorized(caller))) return { kind: 'not_found' };
    return this.#read(afterSeq, caller);
  }

  /**
   * Start the run, or attach to it when it exists and the caller may (its
   * token, an API key, or the start secret of the POST that created it).
   */
  async start(input: StartInput, caller: Caller, mayCreate: boolean, checks: CreateChecks): Promise<StartOutcome> {
    // Checks before creating are awaited; a concurrent start of the same id waits, then attaches or is refused.
    while (this.#starting) await this.#starting.catch(() => {});
    const deciding = this.#start(input, caller, mayCreate, checks);
    this.#starting = deciding;
    try {
      return await deciding;
    } finally {
      if (this.#starting === deciding) this.#starting = null;
    }
  }

  async #start(input: StartInput, caller: Caller, mayCreate: boolean, checks: CreateChecks): Promise<StartOutcome> {
    if (this.#meta) {
      if (caller.token !== undefined && (await this.#authorized({ ...caller, apiKey: false }))) {
        return { kind: 'attached', token: caller.token, status: this.#status() };
      }
      const bySecret =
        checks.startSecret !== undefined &&
        this.#meta.startSecret !== null &&
        (await matchesHash(checks.startSecret, this.#meta.startSecret));
      if (caller.apiKey || bySecret) return { kind: 'attached', token: await this.#addToken(checks.newToken), status: this.#status() };
      return { kind: 'exists' };
    }
    // Only an explicit yes creates: a caller that sent anything else may only attach.
    if (mayCreate !== true) return { kind: 'unauthorized' };
    const agent = getAgent(input.agent);
    if (!agent) throw new Error(`unknown agent ${input.agent}`); // the route checked; a bug if reached
    const client = checks.usage?.client ?? null;
    const now = Date.now();
    const deadlineAt = now + (input.maxRunSeconds ?? this.#config.MAX_RUN_SECONDS) * 1000;
    if (checks.usage) {
      const admission = await admitRun(this.env, checks.usage.limits, checks.usage.client, input.requestId, deadlineAt);
      if (!admission.ok)
        return { kind: 'refused', refusal: { code: admission.code, message: admission.message, retryAfterS: admission.retryAfterS } };
    }
    const token = checks.newToken;
    const meta: RunMeta = {
      requestId: input.requestId,
      agent: input.profile ?? input.agent,
      input,
      tokens: [await hashSecret(token)],
      startSecret: checks.startSecret !== undefined ? await hashSecret(checks.startSecret) : null,
      client,
      limits: checks.usage?.limits ?? null,
      state: 'running',
      createdAt: now,
      deadlineAt,
      finishedAt: null,
      error: null,
    };
    try {
      // The run row and its `run` event together, or neither.
      this.ctx.storage.transactionSync(() => this.#create(meta));
    } catch (err) {
      this.#meta = null;
      this.#log = null;
      if (client !== null) void releaseRun(this.env, client, input.requestId, { tokens: 0, rows: 0 });
      throw err;
    }
    await this.#scheduleAlarm();
    this.#startAgent(agent, 0);
    return { kind: 'created', token, status: this.#status() };
  }

  #create(meta: RunMeta): void {
    this.#createTables();
    if (isExternalRun(meta.input)) this.#createProducersTable();
    this.ctx.storage.sql.exec(
      `INSERT INTO run (id, request_id, agent, input, token, start_secret, client, usage_limits, state, created_at, deadline_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      meta.requestId,
      meta.agent,
      JSON.stringify(meta.input),
      meta.tokens.join(' '),
      meta.startSecret,
      meta.client,
      meta.limits ? JSON.stringify(meta.limits) : null,
      meta.state,
      meta.createdAt,
      meta.deadlineAt,
    );
    this.#meta = meta;
    this.#log = this.#openLog();
    // A new log (a run id used again after its TTL): nothing of it charged yet.
    this.#chargedAt = { rows: 0, tokens: 0 };
    this.#inputChars = null;
    this.#append({ type: 'run', agent: meta.agent, createdAt: meta.createdAt });
    // Store seq 1 now: the first event should not wait for the batch timer.
    this.#events.flush();
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

  /**
   * Append a producer's events to an external run, idempotently per
   * producer (the Durable Streams idempotent-producer rules): a repeat of an
   * acknowledged (epoch, seq) is acknowledged again and stored once; a newer
   * epoch fences the older ones; any seq but the next is a gap. The events,
   * the run's end when they carry `done`, and the producer's new position are
   * stored in one transaction. Nothing is awaited from the producer check to
   * the store, so appends of concurrent producers never interleave.
   */
  async append(caller: Caller, producer: ProducerPosition, events: AppendEvent[]): Promise<AppendOutcome> {
    const meta = this.#meta;
    // Only API keys write; the route refused everyone else already.
    if (!meta || !caller.apiKey) return { kind: 'not_found' };
    if (!isExternalRun(meta.input)) return { kind: 'not_external', agent: meta.agent };
    const known = this.#producer(producer.id);
    const now = Date.now();
    if (known && producer.epoch === known.epoch && producer.seq <= known.seq) {
      // A retry whose answer was lost, say: a live producer, so it renews the lease.
      if (meta.state === 'running') this.ctx.storage.sql.exec('UPDATE producers SET acked_at = ? WHERE producer_id = ?', now, producer.id);
      const seqs = producer.seq === known.seq ? { firstSeq: known.first_seq, lastSeq: known.last_seq } : {};
      return { kind: 'appended', duplicate: true, ...seqs, epoch: known.epoch, producerSeq: known.seq };
    }
    if (meta.state !== 'running') return { kind: 'ended', state: meta.state };
    // An end storage refused is still the run's end: the watchdog stores it.
    if (this.#unfinished) return { kind: 'ended', state: this.#unfinished.state };
    if (known && producer.epoch < known.epoch) return { kind: 'fenced', currentEpoch: known.epoch };
    // A new producer, or a new epoch, starts at seq 0.
    const expectedSeq = known && producer.epoch === known.epoch ? known.seq + 1 : 0;
    if (producer.seq !== expectedSeq) return { kind: 'gap', expectedSeq, receivedSeq: producer.seq };

    const log = this.#events;
    const firstSeq = log.nextSeq;
    const lastSeq = firstSeq + events.length - 1;
    const { body, end } = splitEnd(events);
    const record = () => {
      this.ctx.storage.sql.exec(
        `INSERT INTO producers (producer_id, epoch, seq, first_seq, last_seq, acked_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (producer_id) DO UPDATE SET
           epoch = excluded.epoch, seq = excluded.seq, first_seq = excluded.first_seq,
           last_seq = excluded.last_seq, acked_at = excluded.acked_at`,
        producer.id,
        producer.epoch,
        producer.seq,
        firstSeq,
        lastSeq,
        now,
      );
    };
    // The route caps an append below MAX_BATCH_EVENTS, so the log never
    // flushes part of it on its own: the flush below stores all of it.
    for (const event of body) this.#append(event);
    if (end) {
      // The end's own transaction (run row, error, done) takes the producer's position too.
      if (!this.#tryEnd(end.state, end.error, record)) return { kind: 'not_stored' };
      await this.#ended();
    } else {
      try {
        this.ctx.storage.transactionSync(() => {
          record();
          log.flush();
        });
      } catch (err) {
        // Nothing of it is stored and nobody saw it: the producer retries the same seq.
        console.error(`run ${meta.requestId}: an append could not be stored: ${(err as Error)?.name ?? typeof err}`);
        log.discardPending();
        return { kind: 'not_stored' };
      }
    }
    return { kind: 'appended', duplicate: false, firstSeq, lastSeq, epoch: producer.epoch, producerSeq: producer.seq };
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
      } else if (this.#unfinished) {
        await this.#finish(this.#unfinished.state, this.#unfinished.error);
      } else if (isExternalRun(meta.input) && now >= this.#leaseEndsAt()) {
        await this.#finish('failed', this.#leaseError());
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
    const exists = this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'").toArray().length > 0;
    this.#meta = exists ? this.#readMeta() : null;
    this.#log = this.#meta ? this.#openLog() : null;
  }

  /** A resumable agent's checkpoint: everything appended so far is covered by `cursor`. */
  #checkpoint(cursor: string): void {
    const log = this.#events;
    this.#cursor = { cursor, seq: log.nextSeq - 1 };
    // Covered events all stored already: the cursor can be stored on its own now.
    if (this.#cursor.seq <= log.durableSeq && Date.now() - this.#cursorStoredAt >= CURSOR_EVERY_MS) this.#storeCursor(log.durableSeq);
  }

  /** Store the pending cursor if the events it covers are stored by now (`storedUpTo`). */
  #storeCursor(storedUpTo: number): void {
    const pending = this.#cursor;
    if (!pending || pending.seq > storedUpTo) return;
    this.ctx.storage.sql.exec('UPDATE run SET cursor = ?, cursor_seq = ? WHERE id = 1', pending.cursor, pending.seq);
    this.#cursor = null;
    this.#cursorStoredAt = Date.now();
  }

  #storedCursor(): { cursor: string; seq: number } | null {
    const row = this.ctx.storage.sql
      .exec<{ cursor?: string | null; cursor_seq?: number | null }>('SELECT * FROM run WHERE id = 1')
      .toArray()[0];
    return row?.cursor != null && row.cursor_seq != null ? { cursor: row.cursor, seq: row.cursor_seq } : null;
  }

  #openLog(): EventLog {
    return new EventLog(this.ctx.storage.sql, {
      // A pending cursor goes into the same transaction as the rows that hold what it covers.
      transactionSync: (fn) =>
        this.ctx.storage.transactionSync(() => {
          const upTo = this.#log ? this.#log.nextSeq - 1 : 0;
          const result = fn();
          if (this.#cursor && Date.now() - this.#cursorStoredAt >= CURSOR_EVERY_MS) this.#storeCursor(upTo);
          return result;
        }),
      // A batch the log's timer could not store: nobody saw it; end the run honestly.
      onWriteError: () => {
        this.#events.discardPending();
        void this.#finish('failed', STORAGE_FAILED);
      },
    });
  }

  #createTables(): void {
    this.ctx.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS run (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         request_id  TEXT NOT NULL,
         agent       TEXT NOT NULL,
         input       TEXT NOT NULL,
         token       TEXT NOT NULL,
         start_secret TEXT,
         client      TEXT,
         usage_limits TEXT,
         state       TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         deadline_at INTEGER NOT NULL,
         finished_at INTEGER,
         error       TEXT,
         cursor      TEXT,
         cursor_seq  INTEGER
       )`,
    );
  }

  /** An external run's producers, one row each (see `append`). */
  #createProducersTable(): void {
    this.ctx.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS producers (
         producer_id TEXT PRIMARY KEY,
         epoch       INTEGER NOT NULL,
         seq         INTEGER NOT NULL,
         first_seq   INTEGER NOT NULL,
         last_seq    INTEGER NOT NULL,
         acked_at    INTEGER NOT NULL
       )`,
    );
  }

  #producer(id: string): ProducerRow | null {
    return this.ctx.storage.sql.exec<ProducerRow>('SELECT * FROM producers WHERE producer_id = ?', id).toArray()[0] ?? null;
  }

  /**
   * When an external run's lease ends: its lease after the last append any
   * producer had acknowledged, else after the run was created. Read from
   * storage, the source of truth for the times an alarm acts on.
   */
  #leaseEndsAt(): number {
    const row = this.ctx.storage.sql
      .exec<{ acked: number | null; created: number }>(
        'SELECT (SELECT max(acked_at) FROM producers) AS acked, created_at AS created FROM run WHERE id = 1',
      )
      .one();
    return (row.acked ?? row.created) + leaseMs(this.#meta!.input);
  }

  #leaseError(): RunError {
    const seconds = leaseMs(this.#meta!.input) / 1000;
    return {
      code: 'producer_timeout',
      message: `no events were appended for ${seconds} s (the profile's leaseSeconds); start the run again`,
      retryable: true,
    };
  }

  #readMeta(): RunMeta | null {
    const row = this.ctx.storage.sql.exec<MetaRow>('SELECT * FROM run WHERE id = 1').toArray()[0];
    if (!row) return null;
    return {
      requestId: row.request_id,
      agent: row.agent,
      input: JSON.parse(row.input) as StartInput,
      tokens: row.token.split(' '),
      startSecret: row.start_secret ?? null,
      client: row.client ?? null,
      limits: row.usage_limits ? (JSON.parse(row.usage_limits) as UsageLimits) : null,
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
    const agent = getAgent(meta.input.agent);
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
    const stored = agent?.resumable ? this.#storedCursor() : null;
    if (agent && stored) {
      // The log may hold events past the cursor (it is stored lazily): the agent yields them again; drop them.
      this.#startAgent(agent, lastEvent - stored.seq, stored.cursor);
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
    const meta = this.#meta!;
    const seconds = Math.round((meta.deadlineAt - meta.createdAt) / 1000);
    return { code: 'deadline_exceeded', message: `the run passed its deadline of ${seconds} s`, retryable: false };
  }

  /** A further token for the run (an attach by API key or start secret); only its hash is kept. */
  async #addToken(token: string): Promise<string> {
    const meta = this.#meta!;
    const tokens = [...meta.tokens, await hashSecret(token)];
    // Keep the creator's token; drop the oldest minted ones beyond the cap.
    meta.tokens = tokens.length > MAX_TOKENS ? [tokens[0]!, ...tokens.slice(tokens.length - MAX_TOKENS + 1)] : tokens;
    this.ctx.storage.sql.exec('UPDATE run SET token = ? WHERE id = 1', meta.tokens.join(' '));
    return token;
  }

  /** The log of an existing run (every caller has checked that the run exists). */
  get #events(): EventLog {
    if (!this.#log) throw new Error('no run here'); // a bug if reached
    return this.#log;
  }

  #startAgent(agent: AnyAgent, skip: number, resumeCursor?: string): void {
    const abort = new AbortController();
    this.#agentAbort = abort;
    const input = this.#meta!.input;
    void this.#drive(agent, input, abort, skip, resumeCursor);
  }

  /** Pull the agent's events into the log until it ends, fails or is aborted. */
  async #drive(agent: AnyAgent, input: StartInput, abort: AbortController, skip: number, resumeCursor?: string): Promise<void> {
    let skipped = 0;
    try {
      const ctx = { env: this.env, skip, settings: input.settings ?? {}, ...(resumeCursor !== undefined ? { resumeCursor } : {}) };
      const events = agent.run(
        { requestId: input.requestId, query: input.query, messages: input.messages, options: input.options },
        abort.signal,
        ctx,
      );
      for await (const event of events) {
        if (abort.signal.aborted) return; // cancel or deadline already wrote `done`
        if (event.type === 'checkpoint') {
          // While re-yielding what the log already holds, nextSeq says nothing about what the cursor covers.
          if (skipped >= skip) this.#checkpoint(event.cursor);
          continue;
        }
        if (skipped < skip) {
          skipped++;
          continue;
        }
        this.#append(event);
        this.#maybeCharge();
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
    // Usage, for the budgets: what the model reported, else an estimate from the text.
    if (body.type === 'delta') this.#outputChars += body.text.length;
    else if (body.type === 'result') this.#reportedTokens = tokensFromUsage((body.data as { usage?: unknown } | undefined)?.usage);
    const log = this.#events;
    const seq = log.nextSeq;
    const frame = encodeEvent({ requestId: meta.requestId, seq, ts: Date.now(), ...body });
    log.append(seq, frame);
  }

  /**
   * End the run exactly once: optional `error`, then `done`, stored before
   * anyone sees them. If storage refuses that, what could not be stored is
   * dropped (nobody saw it, so seqs stay gap-free) and the run ends with a
   * small `storage_failed` error instead; if even that cannot be written, the
   * run stays `running` (never reported ended without its `done`) and the
   * watchdog alarm tries again.
   */
  async #finish(state: TerminalState, error: RunError | null): Promise<void> {
    const meta = this.#meta!;
    if (meta.state !== 'running') return;
    this.#agentAbort?.abort();
    this.#agentAbort = null;
    this.#unfinished = null;
    if (!this.#tryEnd(state, error) && !this.#tryEnd('failed', STORAGE_FAILED)) {
      console.error(`run ${meta.requestId}: its end could not be stored; the watchdog alarm will try again`);
      this.#unfinished = { state: 'failed', error: STORAGE_FAILED };
      await this.#scheduleAlarm().catch(() => {});
      return;
    }
    await this.#ended();
  }

  /** After the end is stored: stop the agent, charge the usage, set the TTL alarm. */
  async #ended(): Promise<void> {
    this.#agentAbort?.abort();
    this.#agentAbort = null;
    this.#unfinished = null;
    this.#releaseUsage();
    await this.#scheduleAlarm();
  }

  /**
   * Store the end in one transaction (the log's last rows, the run's row,
   * and what `within` writes); false when storage refused it (then nothing
   * pending is left).
   */
  #tryEnd(state: TerminalState, error: RunError | null, within?: () => void): boolean {
    const meta = this.#meta!;
    const log = this.#events;
    const now = Date.now();
    try {
      this.ctx.storage.transactionSync(() => {
        this.ctx.storage.sql.exec(
          'UPDATE run SET state = ?, finished_at = ?, error = ? WHERE id = 1',
          state,
          now,
          error ? JSON.stringify(error) : null,
        );
        if (error) this.#append({ type: 'error', ...error });
        this.#append({ type: 'done', state });
        within?.();
        log.flush();
      });
    } catch (err) {
      console.error(`run ${meta.requestId}: storing its end failed: ${(err as Error)?.name ?? typeof err}`);
      log.discardPending();
      return false;
    }
    meta.state = state;
    meta.finishedAt = now;
    meta.error = error;
    return true;
  }

  /**
   * Charge what the run used, in all, to its client's and the deployment's
   * budgets (only runs that count); the counters add what its charges as it
   * went have not.
   */
  #releaseUsage(): void {
    const meta = this.#meta!;
    if (meta.client === null) return;
    void releaseRun(this.env, meta.client, meta.requestId, { tokens: this.#tokensUsed(), rows: this.#events.storedRows() });
  }

  /** The run's model tokens so far: what the model reported, else an estimate from the text. */
  #tokensUsed(): number {
    const input = this.#meta!.input;
    // The demo agent calls no model: it costs rows, not tokens.
    if (input.agent === 'demo') return 0;
    this.#inputChars ??= input.messages.reduce((n, m) => n + m.content.length, input.query.length);
    return this.#reportedTokens ?? estimateTokens(this.#inputChars + this.#outputChars);
  }

  /**
   * Charge a running run's usage so far once it has written enough since its
   * last charge (chargeInterval: 500 rows or 2,500 tokens with the default
   * budgets), so no run goes far past a budget before it is counted. In the
   * background, one charge at a time; the agent never waits for it. A charge
   * that fails is not retried until the next interval (the counters take
   * totals, so that one counts what this one missed, as the release does).
   */
  #maybeCharge(): void {
    const meta = this.#meta!;
    if (meta.client === null || meta.limits === null || this.#charging || meta.state !== 'running') return;
    const every = chargeInterval(meta.limits);
    if (!every) return;
    const log = this.#events;
    const tokens = this.#tokensUsed();
    if (log.rowsWritten - this.#chargedAt.rows < every.rows && tokens - this.#chargedAt.tokens < every.tokens) return;
    this.#chargedAt = { rows: log.rowsWritten, tokens };
    const charging = this.#charge(meta, meta.client, meta.limits, log, tokens)
      .catch((err) => console.error(`run ${meta.requestId}: charging its usage failed: ${(err as Error)?.name ?? typeof err}`))
      .finally(() => {
        if (this.#charging === charging) this.#charging = null;
      });
    this.#charging = charging;
  }

  /** One charge; a budget it finds used up ends the run with `quota_exceeded`. */
  async #charge(meta: RunMeta, client: string, limits: UsageLimits, log: EventLog, tokens: number): Promise<void> {
    const answer = await chargeRun(this.env, limits, client, meta.requestId, { tokens, rows: log.storedRows() });
    if (answer === null || answer.ok) return;
    // Ended meanwhile (or deleted, or its end waits for the watchdog): nothing to stop.
    if (this.#meta !== meta || this.#log !== log || meta.state !== 'running' || this.#unfinished) return;
    await this.#finish('failed', { code: 'quota_exceeded', message: answer.message, retryable: false });
  }

  async #scheduleAlarm(): Promise<void> {
    const meta = this.#meta;
    if (!meta) return;
    const at =
      meta.state === 'running'
        ? Math.min(meta.deadlineAt, Date.now() + WATCHDOG_MS, isExternalRun(meta.input) ? this.#leaseEndsAt() : Infinity)
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
    let match = false;
    // Every stored hash is compared, so the timing does not say which one matched.
    for (const stored of meta.tokens) {
      const ok = stored.startsWith('sha256:') ? await matchesHash(caller.token, stored) : await tokensEqual(caller.token, stored);
      if (ok) match = true;
    }
    return match;
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

  #read(afterSeq: number, caller: Caller): Exclude<ReadOutcome, { kind: 'not_found' }> {
    const meta = this.#meta!;
    const log = this.#events;
    if (meta.state !== 'running' && afterSeq >= log.durableSeq) return { kind: 'no_content' };
    const maxReaders = caller.maxReaders;
    if (maxReaders !== undefined && this.#limitedReaders >= maxReaders) {
      return {
        kind: 'refused',
        refusal: {
          code: 'rate_limited',
          message: `this run already has ${maxReaders} readers; close one or retry later`,
          retryAfterS: READERS_RETRY_AFTER_S,
        },
      };
    }
    // API-key and loopback readers take no anonymous caller's place.
    const limited = maxReaders !== undefined;
    if (limited) this.#limitedReaders++;
    const body = openReader({
      maxAgeMs: this.#config.READER_MAX_AGE_SECONDS * 1000,
      onClose: () => {
        if (limited) this.#limitedReaders--;
      },
      log,
      afterSeq,
      retryMs: this.#config.RETRY_MS,
      heartbeatMs: this.#config.HEARTBEAT_MS,
      stallMs: READER_STALL_MS,
      ended: () => this.#meta?.state !== 'running',
      // After the TTL deletion `#load` makes a fresh log; this reader's run is gone.
      gone: () => this.#log !== log,
    });
    return { kind: 'stream', body };
  }
}

/** An append's events without its end (a trailing `done`, and the `error` right before it). */
function splitEnd(events: AppendEvent[]): { body: AppendEvent[]; end: AppendEnd | null } {
  const last = events.at(-1);
  if (last?.type !== 'done') return { body: events, end: null };
  const before = events.at(-2);
  if (before?.type === 'error') {
    const { code, message, retryable } = before;
    return { body: events.slice(0, -2), end: { state: last.state, error: { code, message, retryable } } };
  }
  return { body: events.slice(0, -1), end: { state: last.state, error: null } };
}
