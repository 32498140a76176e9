/**
 * AgentRun: start or resume one edgestream run and follow it to its `done`,
 * whatever the network does. Browser and Node 22; no dependency beyond the
 * bundled eventsource-parser.
 *
 * - Starts with `POST /v1/runs` (streamed) and, after any drop, resumes with
 *   `GET /v1/runs/:id/events` + `Last-Event-ID`; it never starts a second run.
 * - Backoff with full jitter; the attempt count resets only after a
 *   connection stayed up `resetAfterMs`.
 * - A watchdog: no byte for 2.5x the heartbeat means a dead connection.
 * - Exactly once, in seq order: duplicates dropped; a gap reconnects from
 *   the last contiguous seq.
 * - Callbacks, and an async iterator with backpressure: while the consumer
 *   lags, the client stops reading the socket (the server's log keeps the rest).
 */
import { createParser } from 'eventsource-parser';
import { BACKOFF_DEFAULTS, backoffDelay, retryAfterMs, type BackoffOptions } from './backoff';
import { readWithin, sleep } from '../lib/timing';
import { clearHandle, loadHandle, saveHandle, type HandleStorage } from './persist';
import type { ChatMessage, ClientError, ConnectionState, RunEvent, RunHandle, TerminalState } from './types';

/** The server's default HEARTBEAT_MS. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Silence longer than this many heartbeats means the connection is dead (half-open TCP sends no error). */
export const WATCHDOG_HEARTBEATS = 2.5;
/** Events the async iterator may hold before the client stops reading the network. */
export const DEFAULT_HIGH_WATER_MARK = 256;

export interface RunOptions {
  /** Base URL of the service, e.g. `https://edgestream.example.com`. */
  endpoint: string;
  /** The question; needed to start a run, ignored when resuming. */
  query?: string;
  agent?: string;
  options?: Record<string, unknown>;
  messages?: ChatMessage[];
  /** Idempotency key for the start; one is generated so a retried POST cannot start a second run. */
  requestId?: string;
  /** Sent as Bearer when starting (deployments with API_KEYS). */
  apiKey?: string;
  /** Resume an existing run instead of starting one. */
  resume?: RunHandle;
  /** Persist `{requestId, token, lastEventId}` under this key (sessionStorage in browsers). */
  persistKey?: string;
  storage?: HandleStorage;
  /** The server's HEARTBEAT_MS; the watchdog fires after 2.5x this much silence. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Disconnects (never cancels) the run when aborted. */
  signal?: AbortSignal;
  highWaterMark?: number;
  fetch?: typeof fetch;
  onEvent?: (event: RunEvent) => void;
  onState?: (state: ConnectionState, run: AgentRun) => void;
}

type ReadOutcome = 'done' | 'dropped' | 'gap' | 'stalled';

class StopError extends Error {}

export class AgentRun implements AsyncIterable<RunEvent> {
  requestId: string | undefined;
  token: string | undefined;
  /** The highest seq delivered, in order. */
  lastEventId = 0;
  state: ConnectionState = 'connecting';
  /** The run's terminal state once its `done` arrived. */
  runState: TerminalState | undefined;
  /** Why the client stopped, when `state` is `error`. */
  error: ClientError | undefined;
  /** Resolves when the client stops for good (`closed` or `error`). */
  readonly finished: Promise<AgentRun>;

  readonly #opts: RunOptions;
  readonly #fetch: typeof fetch;
  readonly #backoff: Required<BackoffOptions>;
  readonly #stop = new AbortController();
  #connection: AbortController | null = null;
  #queue: RunEvent[] = [];
  #iterating = false;
  #wakeConsumer: (() => void) | null = null;
  #wakeProducer: (() => void) | null = null;
  #identified: Promise<void>;
  #resolveIdentified!: () => void;

  constructor(opts: RunOptions) {
    this.#opts = opts;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#backoff = { ...BACKOFF_DEFAULTS, ...opts.backoff };
    this.#identified = new Promise((resolve) => (this.#resolveIdentified = resolve));
    if (opts.resume) this.#identify(opts.resume.requestId, opts.resume.token, opts.resume.lastEventId);
    opts.signal?.addEventListener('abort', () => this.disconnect(), { once: true });
    this.finished = this.#loop().then(() => this);
  }

  /** Resume the run persisted under `persistKey`, or null when there is none. */
  static restore(opts: RunOptions & { persistKey: string; fromStart?: boolean }): AgentRun | null {
    const handle = loadHandle(opts.persistKey, opts.storage);
    if (!handle) return null;
    return new AgentRun({ ...opts, resume: { ...handle, lastEventId: opts.fromStart ? 0 : handle.lastEventId } });
  }

  /** Stop following the run. The run itself goes on; resume it later with the same handle. */
  disconnect(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#connection?.abort();
    this.#wakeProducer?.();
  }

  /** Cancel the run on the server (its `done` then arrives as `cancelled`). Resolves with the status JSON. */
  async cancel(): Promise<Record<string, unknown>> {
    await this.#identified;
    const res = await this.#fetch(this.#url(`/v1/runs/${encodeURIComponent(this.requestId!)}/cancel`), {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.token}` },
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) throw Object.assign(new Error(`cancel failed: ${res.status}`), { body });
    return body;
  }

  /** The handle to resume this run elsewhere (or after a reload). */
  get handle(): RunHandle | undefined {
    return this.requestId && this.token ? { requestId: this.requestId, token: this.token, lastEventId: this.lastEventId } : undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<RunEvent> {
    this.#iterating = true;
    return {
      next: async () => {
        for (;;) {
          const event = this.#queue.shift();
          if (event) {
            if (this.#queue.length < this.#hwm) this.#wakeProducer?.();
            return { value: event, done: false };
          }
          if (this.#isFinal()) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.#wakeConsumer = resolve));
        }
      },
      return: async () => {
        this.disconnect();
        return { value: undefined, done: true };
      },
    };
  }

  // ---- the connection loop ----------------------------------------------

  async #loop(): Promise<void> {
    let attempt = 0;
    let started = this.#opts.resume !== undefined;
    while (!this.#stop.signal.aborted) {
      let openedAt = 0;
      let waitMs: number | null = null;
      try {
        const res = started ? await this.#get() : await this.#post();
        if (res.status === 204) {
          // [contract] nothing can follow: the run has ended and we have its last event.
          await res.body?.cancel();
          return this.#close();
        }
        if (res.status === 200 && res.body) {
          if (!started) {
            this.#identify(res.headers.get('X-Request-Id') ?? this.#requestId(), res.headers.get('X-Run-Token') ?? '', 0);
            started = true;
          }
          this.#setState('open');
          openedAt = Date.now();
          const outcome = await this.#read(res.body);
          if (outcome === 'done') return this.#close();
          if (outcome === 'gap') continue; // reconnect at once from the last contiguous seq
        } else {
          const error = await errorOf(res);
          const transient = res.status === 408 || res.status === 429 || res.status >= 500;
          if (!transient) return this.#fail(error);
          waitMs = retryAfterMs(res.headers.get('Retry-After'));
        }
      } catch (err) {
        if (this.#stop.signal.aborted || err instanceof StopError) break;
        // fetch's TypeError ("Failed to fetch", "Load failed", "fetch failed"), resets, aborts by the watchdog: all retryable.
      }
      if (this.#stop.signal.aborted) break;
      if (openedAt && Date.now() - openedAt >= this.#backoff.resetAfterMs) attempt = 0;
      if (attempt >= this.#backoff.maxAttempts) {
        return this.#fail({ code: 'retries_exhausted', message: `gave up after ${attempt} attempts to reconnect` });
      }
      this.#setState('reconnecting');
      await sleep(waitMs ?? backoffDelay(attempt, this.#backoff), this.#stop.signal);
      attempt++;
    }
    this.#close();
  }

  #post(): Promise<Response> {
    const o = this.#opts;
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
    if (o.apiKey) headers.Authorization = `Bearer ${o.apiKey}`;
    const body = {
      query: o.query,
      agent: o.agent,
      options: o.options,
      messages: o.messages,
      requestId: this.#requestId(),
    };
    return this.#fetch(this.#url('/v1/runs'), {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: this.#newConnection(),
    });
  }

  #get(): Promise<Response> {
    return this.#fetch(this.#url(`/v1/runs/${encodeURIComponent(this.requestId!)}/events`), {
      headers: { Authorization: `Bearer ${this.token}`, 'Last-Event-ID': String(this.lastEventId), Accept: 'text/event-stream' },
      signal: this.#newConnection(),
    });
  }

  /** Read one connection's body; deliver events in order; say why it ended. */
  async #read(body: ReadableStream<Uint8Array>): Promise<ReadOutcome> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let parsed: RunEvent[] = [];
    const parser = createParser({
      onEvent: (e) => {
        try {
          parsed.push(JSON.parse(e.data) as RunEvent);
        } catch {
          // Not one of ours (a proxy's page?); the seq check below catches any loss.
        }
      },
    });
    const watchdogMs = (this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS) * WATCHDOG_HEARTBEATS;
    try {
      for (;;) {
        const chunk = await readWithin(reader, watchdogMs);
        if (chunk === 'timeout') return 'stalled';
        if (chunk.done) return 'dropped';
        parser.feed(decoder.decode(chunk.value, { stream: true }));
        const batch = parsed;
        parsed = [];
        for (const event of batch) {
          if (event.seq <= this.lastEventId) continue; // duplicate
          if (event.seq !== this.lastEventId + 1) return 'gap';
          await this.#deliver(event);
          if (event.type === 'done') return 'done';
        }
      }
    } finally {
      this.#connection?.abort();
      reader.cancel().catch(() => {});
    }
  }

  async #deliver(event: RunEvent): Promise<void> {
    this.lastEventId = event.seq;
    if (event.type === 'done') this.runState = event.state;
    if (this.#opts.persistKey && this.handle) {
      if (event.type === 'done') clearHandle(this.#opts.persistKey, this.#opts.storage);
      else saveHandle(this.#opts.persistKey, this.handle, this.#opts.storage);
    }
    this.#opts.onEvent?.(event);
    if (!this.#iterating) return;
    this.#queue.push(event);
    this.#wakeConsumer?.();
    // Backpressure: stop reading the network while the consumer is behind.
    while (this.#queue.length >= this.#hwm && !this.#stop.signal.aborted) {
      await new Promise<void>((resolve) => (this.#wakeProducer = resolve));
    }
    if (this.#stop.signal.aborted) throw new StopError();
  }

  // ---- helpers ------------------------------------------------------------

  get #hwm(): number {
    return this.#opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  }

  #requestId(): string {
    this.#opts.requestId ??= `web_${crypto.randomUUID()}`;
    return this.#opts.requestId;
  }

  #identify(requestId: string, token: string, lastEventId: number): void {
    this.requestId = requestId;
    this.token = token;
    this.lastEventId = lastEventId;
    if (this.#opts.persistKey) saveHandle(this.#opts.persistKey, this.handle!, this.#opts.storage);
    this.#resolveIdentified();
  }

  #newConnection(): AbortSignal {
    this.#connection = new AbortController();
    return this.#connection.signal;
  }

  #url(path: string): string {
    return new URL(path, this.#opts.endpoint).href;
  }

  #isFinal(): boolean {
    return this.state === 'closed' || this.state === 'error';
  }

  #setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.#opts.onState?.(state, this);
    this.#wakeConsumer?.();
  }

  #close(): void {
    this.#setState('closed');
  }

  #fail(error: ClientError): void {
    this.error = error;
    if (this.#opts.persistKey && error.status === 404) clearHandle(this.#opts.persistKey, this.#opts.storage);
    this.#setState('error');
  }
}

/** Start a run and follow it. */
export function startRun(opts: RunOptions & { query: string }): AgentRun {
  return new AgentRun(opts);
}

/** Follow an existing run from `handle.lastEventId`. */
export function resumeRun(opts: RunOptions & { resume: RunHandle }): AgentRun {
  return new AgentRun(opts);
}

async function errorOf(res: Response): Promise<ClientError> {
  let code = `http_${res.status}`;
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status
  }
  return { code, message, status: res.status };
}
