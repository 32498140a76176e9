/**
 * AgentRun: start or resume one edgestream run and follow it to its `done`,
 * whatever the network does. Browser and Node 22; no dependency (the SSE
 * parsing is ./sse.ts).
 *
 * - Starts with `POST /v1/runs` (streamed) and, after any drop, resumes with
 *   `GET /v1/runs/:id/events` + `Last-Event-ID`; it never starts a second run.
 *   A POST whose answer was lost is retried with the same requestId and
 *   startSecret, which attaches to the run it may have created.
 * - Backoff with full jitter; the attempt count resets only after a
 *   connection stayed up `resetAfterMs`.
 * - A watchdog: no byte for 2.5x the heartbeat means a dead connection.
 * - In a browser: while it is offline the client waits for the network
 *   instead of spending attempts (`offline` is true meanwhile), and the
 *   `online` event or the tab becoming visible again ends any wait at once.
 *   A cross-origin endpoint that refuses this page's origin (CORS) is told
 *   apart from a network failure and ends the run with `origin_not_allowed`
 *   within one attempt, naming the setting that fixes it.
 * - Exactly once, in seq order: duplicates dropped; a gap reconnects from
 *   the last contiguous seq.
 * - Callbacks, and an async iterator with backpressure: while the consumer
 *   lags, the client stops reading the socket (the server's log keeps the rest).
 *   Without `onEvent`, events are queued for the iterator from the start, so
 *   a loop begun after an `await` misses nothing; the iterator throws the
 *   `ClientError` when the client gives up.
 */
import { BACKOFF_DEFAULTS, backoffDelay, retryAfterMs, type BackoffOptions } from './backoff';
import { readWithin, sleep, within } from '../lib/timing';
import { clearHandle, loadHandle, saveHandle, type HandleStorage } from './persist';
import { sseData } from './sse';
import type { ChatMessage, ClientError, ConnectionState, RunEvent, RunHandle, TerminalState } from './types';

/** The server's default HEARTBEAT_MS. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Silence longer than this many heartbeats means the connection is dead (half-open TCP sends no error). */
export const WATCHDOG_HEARTBEATS = 2.5;
/** Events the async iterator may hold before the client stops reading the network. */
export const DEFAULT_HIGH_WATER_MARK = 256;
/** A `Retry-After` longer than this is capped: a page should not sit silent for an hour. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** Offline, the `online` event ends the wait; this re-check covers a browser that never sends it. */
const OFFLINE_RECHECK_MS = 30_000;

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
  /**
   * Sent with every `POST` of this start (the first and its retries): when
   * the first answer is lost, a retry with the same `requestId` and secret
   * attaches to the run it created, although its token was in that answer.
   * One is generated per start (32 random bytes, base64url); pass your own
   * (printable ASCII, 16 to 256 characters) only to survive a restart of your
   * own process mid-start, and keep it as secret as a token. Never persisted:
   * once the run is identified, its token takes over and the secret is dropped.
   */
  startSecret?: string;
  /**
   * A start ticket from the embedding site's backend, for an agent (profile)
   * whose `humanCheck` is `ticket` or `either`. Sent with every `POST` of
   * this start (a ticket may be reused until it expires). Kept in memory
   * only, never persisted; dropped once the run is identified.
   */
  ticket?: string;
  /**
   * A Turnstile token, for an agent whose `humanCheck` is `turnstile` or
   * `either`. Tokens are single-use, yet every `POST` of this start may send
   * it: the server's siteverify idempotency key (derived from the requestId)
   * gives a retry the first check's answer. Get a new one for the next start.
   * Kept in memory only, never persisted; dropped once the run is identified.
   * Without valid evidence the start ends with the final error
   * `human_check_failed` (403).
   */
  turnstileToken?: string;
  /** Sent as Bearer when starting (deployments with API_KEYS). */
  apiKey?: string;
  /** Resume an existing run instead of starting one. */
  resume?: RunHandle;
  /**
   * Where the run's events are read: a path on `endpoint`, by default
   * `/v1/runs/{requestId}/events`. A chat's turn is read at
   * `/v1/chat/{chatId}/events?requestId=...` with the chat's credential as
   * the token (see `Chat` in ./chat.ts); `cancel()` then does not apply.
   */
  eventsPath?: string;
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
  /** Called on every change of `state`, and of `offline` (with the same `state`). */
  onState?: (state: ConnectionState, run: AgentRun) => void;
}

type ReadOutcome = 'done' | 'dropped' | 'gap' | 'stalled';

class StopError extends Error {}

/** The error the async iterator throws when the client gives up. */
export class AgentRunError extends Error {
  override readonly name = 'AgentRunError';
  readonly code: string;
  readonly status: number | undefined;
  constructor(error: ClientError) {
    super(error.message);
    this.code = error.code;
    this.status = error.status;
  }
}

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
  /**
   * The browser says it has no network (`navigator.onLine` false) and the
   * client is waiting for it, spending no attempts. Always false outside browsers.
   */
  offline = false;
  /** Resolves when the client stops for good (`closed` or `error`). */
  readonly finished: Promise<AgentRun>;

  readonly #opts: RunOptions;
  /** This start's idempotency key: the caller's, or one made once and reused by every retried POST. */
  readonly #startId: string;
  /** Opens the run a lost answer created; dropped once the token is known (see `startSecret`). */
  #startSecret: string | undefined;
  /** The start's human-check evidence (`ticket`, `turnstileToken`); dropped like the startSecret. */
  #human: Pick<RunOptions, 'ticket' | 'turnstileToken'> | undefined;
  readonly #fetch: typeof fetch;
  readonly #backoff: Required<BackoffOptions>;
  readonly #stop = new AbortController();
  #connection: AbortController | null = null;
  #queue: RunEvent[] = [];
  /** Queue events for the async iterator: from the start, unless callbacks consume them. */
  #queueing: boolean;
  /** An iterator is consuming: only then does a full queue pause reading (nobody else would drain it). */
  #consuming = false;
  #wakeConsumer: (() => void) | null = null;
  #wakeProducer: (() => void) | null = null;
  #identified: Promise<void>;
  #resolveIdentified!: () => void;
  #rejectIdentified!: (err: Error) => void;

  constructor(opts: RunOptions) {
    this.#opts = { ...opts, startSecret: undefined, ticket: undefined, turnstileToken: undefined };
    this.#human = opts.resume ? undefined : { ticket: opts.ticket, turnstileToken: opts.turnstileToken };
    this.#startId = opts.requestId ?? `web_${randomId()}`;
    this.#startSecret = opts.resume ? undefined : (opts.startSecret ?? base64url(randomBytes(32)));
    this.#queueing = opts.onEvent === undefined;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#backoff = { ...BACKOFF_DEFAULTS, ...opts.backoff };
    this.#identified = new Promise((resolve, reject) => {
      this.#resolveIdentified = resolve;
      this.#rejectIdentified = reject;
    });
    this.#identified.catch(() => {}); // only cancel() awaits it
    if (opts.resume) this.#identify(opts.resume.requestId, opts.resume.token, opts.resume.lastEventId);
    const onAbort = () => this.disconnect();
    if (opts.signal?.aborted) this.disconnect();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    // The browser says the network is gone: the open connection is dead or soon will be (a
    // half-open socket would hold the reader until the watchdog). Drop it now and wait for `online`.
    const onOffline = () => this.#connection?.abort(new DOMException('the browser went offline', 'AbortError'));
    globalThis.addEventListener?.('offline', onOffline);
    this.finished = this.#loop().then(() => {
      opts.signal?.removeEventListener('abort', onAbort);
      globalThis.removeEventListener?.('offline', onOffline);
      return this;
    });
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
    await this.#identified; // rejects when the client stopped before the run was identified
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
    this.#queueing = true;
    this.#consuming = true;
    return {
      next: async () => {
        for (;;) {
          const event = this.#queue.shift();
          if (event) {
            this.#persist(event); // what the consumer took: a reload resumes after it
            if (this.#queue.length < this.#hwm) this.#wakeProducer?.();
            return { value: event, done: false };
          }
          if (this.state === 'error') throw new AgentRunError(this.error!);
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
    /**
     * A POST went out and its answer was lost: the run may exist without our
     * knowing its token. The retry carries the same startSecret, which
     * attaches to that run; a 409 then means the run is not ours.
     */
    let postUnanswered = false;
    /** Where the last gap was seen: a gap that repeats there waits like any failure. */
    let gapAt = -1;
    try {
      new URL(this.#opts.endpoint);
    } catch {
      return this.#fail({ code: 'invalid_endpoint', message: `not a URL: ${this.#opts.endpoint}` });
    }
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
        if (res.status === 200 && res.body && isEventStream(res) && (started || res.headers.has('X-Run-Token'))) {
          if (!started) {
            this.#identify(res.headers.get('X-Request-Id') ?? this.#startId, res.headers.get('X-Run-Token')!, 0);
            started = true;
          }
          this.#setState('open');
          openedAt = Date.now();
          const outcome = await this.#read(res.body);
          if (outcome === 'done') return this.#close();
          if (outcome === 'gap' && gapAt !== this.lastEventId) {
            gapAt = this.lastEventId;
            continue; // reconnect at once from the last contiguous seq
          }
        } else if (res.status === 200) {
          // A 200 that is not our stream (a captive portal's page, a proxy's error page): retry later.
          await res.body?.cancel();
          if (!started) postUnanswered = true;
        } else {
          const error = await errorOf(res, this.#watchdogMs);
          if (res.status === 409 && postUnanswered) {
            return this.#fail({
              code: 'start_unconfirmed',
              message: "a run with this requestId exists and this client's startSecret does not open it; start a new run",
              status: 409,
            });
          }
          const transient = res.status === 408 || res.status === 429 || res.status >= 500;
          if (!transient) return this.#fail(error);
          if (!started) postUnanswered = true;
          waitMs = retryAfterMs(res.headers.get('Retry-After'));
        }
      } catch (err) {
        if (this.#stop.signal.aborted || err instanceof StopError) break;
        if (!isNetworkError(err)) {
          // A bug or a misuse, not the network: retrying would only repeat it.
          return this.#fail({ code: 'client_error', message: String((err as Error)?.message ?? err) });
        }
        // fetch's TypeError ("Failed to fetch", "Load failed", "fetch failed"), resets, aborts by the watchdog.
        if (!started) postUnanswered = true;
        // A browser hides why a cross-origin request failed; ask the endpoint in ways CORS cannot block.
        if (err instanceof TypeError) {
          const refused = await originRefused(this.#opts.endpoint, this.#fetch);
          if (refused) {
            console.error(`edgestream client: ${refused.message}`);
            return this.#fail(refused);
          }
        }
      }
      if (this.#stop.signal.aborted) break;
      if (openedAt && Date.now() - openedAt >= this.#backoff.resetAfterMs) attempt = 0;
      if (isOffline()) {
        // No network at all: attempts would fail without telling anything. Wait for it, however long.
        this.#setOffline(true);
        this.#setState('reconnecting');
        await this.#pause(OFFLINE_RECHECK_MS);
        this.#setOffline(false);
        attempt = 0;
        continue;
      }
      if (attempt >= this.#backoff.maxAttempts) {
        return this.#fail({ code: 'retries_exhausted', message: `gave up after ${attempt} attempts to reconnect` });
      }
      this.#setState('reconnecting');
      const woken = await this.#pause(waitMs === null ? backoffDelay(attempt, this.#backoff) : Math.min(waitMs, MAX_RETRY_AFTER_MS));
      // Back online or looked at again: a fresh start of the count, as after a good connection.
      attempt = woken ? 0 : attempt + 1;
    }
    this.#close();
  }

  /**
   * Wait `ms`, less when the client stops, the browser comes back online or
   * the tab becomes visible (someone is looking: try now, not in 15 s).
   * Resolves true when one of those browser events ended the wait.
   */
  async #pause(ms: number): Promise<boolean> {
    const wake = new AbortController();
    const stop = () => wake.abort();
    this.#stop.signal.addEventListener('abort', stop, { once: true });
    let woken = false;
    const onWake = () => {
      if (globalThis.document?.visibilityState === 'hidden') return; // a tab going to the background
      woken = true;
      wake.abort();
    };
    globalThis.addEventListener?.('online', onWake);
    globalThis.document?.addEventListener('visibilitychange', onWake);
    try {
      await sleep(ms, wake.signal);
    } finally {
      this.#stop.signal.removeEventListener('abort', stop);
      globalThis.removeEventListener?.('online', onWake);
      globalThis.document?.removeEventListener('visibilitychange', onWake);
    }
    return woken;
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
      requestId: this.#startId,
      startSecret: this.#startSecret,
      ...this.#human,
    };
    return this.#connect(this.#url('/v1/runs'), { method: 'POST', headers, body: JSON.stringify(body) });
  }

  #get(): Promise<Response> {
    return this.#connect(this.#url(this.#opts.eventsPath ?? `/v1/runs/${encodeURIComponent(this.requestId!)}/events`), {
      headers: { Authorization: `Bearer ${this.token}`, 'Last-Event-ID': String(this.lastEventId), Accept: 'text/event-stream' },
    });
  }

  /**
   * One connection attempt. The watchdog covers the wait for headers too: a
   * proxy or a half-open connection that never answers must not hold the
   * client in `connecting` for minutes.
   */
  async #connect(url: string, init: RequestInit): Promise<Response> {
    const connection = new AbortController();
    this.#connection = connection;
    const timer = setTimeout(() => connection.abort(new DOMException('no response headers', 'TimeoutError')), this.#watchdogMs);
    try {
      return await this.#fetch(url, { ...init, signal: connection.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Read one connection's body; deliver events in order; say why it ended. */
  async #read(body: ReadableStream<Uint8Array>): Promise<ReadOutcome> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let parsed: RunEvent[] = [];
    const feed = sseData((data) => {
      try {
        const event = JSON.parse(data) as RunEvent;
        if (Number.isSafeInteger(event?.seq)) parsed.push(event);
      } catch {
        // Not one of ours (a proxy's page?); the seq check below catches any loss.
      }
    });
    try {
      for (;;) {
        const chunk = await readWithin(reader, this.#watchdogMs);
        if (chunk === 'timeout') return 'stalled';
        if (chunk.done) return 'dropped';
        feed(decoder.decode(chunk.value, { stream: true }));
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
    if (!this.#queueing) {
      this.#persist(event);
      guard(() => this.#opts.onEvent?.(event));
      return;
    }
    guard(() => this.#opts.onEvent?.(event));
    // Until an iterator takes events, delivered is as far as anyone got.
    if (!this.#consuming) this.#persist(event);
    this.#queue.push(event);
    this.#wakeConsumer?.();
    // Backpressure: stop reading the network while the consumer is behind.
    while (this.#consuming && this.#queue.length >= this.#hwm && !this.#stop.signal.aborted) {
      await new Promise<void>((resolve) => (this.#wakeProducer = resolve));
    }
    if (this.#stop.signal.aborted) throw new StopError();
  }

  // ---- helpers ------------------------------------------------------------

  /**
   * Remember how far the consumer got (not how far the network got), so a
   * reload resumes after the last event a page actually took.
   */
  #persist(event: RunEvent): void {
    const key = this.#opts.persistKey;
    if (!key || !this.requestId || !this.token) return;
    if (event.type === 'done') clearHandle(key, this.#opts.storage);
    else saveHandle(key, { requestId: this.requestId, token: this.token, lastEventId: event.seq }, this.#opts.storage);
  }

  get #hwm(): number {
    return this.#opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  }

  get #watchdogMs(): number {
    return (this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS) * WATCHDOG_HEARTBEATS;
  }

  #identify(requestId: string, token: string, lastEventId: number): void {
    this.requestId = requestId;
    this.token = token;
    this.lastEventId = lastEventId;
    this.#startSecret = this.#human = undefined; // the token opens the run from now on
    if (this.#opts.persistKey) saveHandle(this.#opts.persistKey, this.handle!, this.#opts.storage);
    this.#resolveIdentified();
  }

  #url(path: string): string {
    return new URL(path, this.#opts.endpoint).href;
  }

  #isFinal(): boolean {
    return this.state === 'closed' || this.state === 'error';
  }

  #setOffline(offline: boolean): void {
    if (this.offline === offline) return;
    this.offline = offline;
    guard(() => this.#opts.onState?.(this.state, this));
  }

  #setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    guard(() => this.#opts.onState?.(state, this));
    this.#wakeConsumer?.();
  }

  #close(): void {
    this.#rejectIdentified(new Error('the client stopped before the run was identified'));
    this.#setState('closed');
  }

  #fail(error: ClientError): void {
    this.error = error;
    this.#rejectIdentified(new AgentRunError(error));
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

/** A callback of the caller's must not break the client's loop; report it and go on. */
function guard(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.error('edgestream client: a callback threw', err);
  }
}

/** The browser knows it has no network. `navigator.onLine` true proves nothing; false is reliable. */
function isOffline(): boolean {
  return typeof document !== 'undefined' && globalThis.navigator?.onLine === false;
}

/** How long each probe of `originRefused` may take. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * After a fetch failed with a TypeError in a page: was it CORS? A CORS refusal
 * looks exactly like a network error to script, so probe the endpoint twice:
 * a `no-cors` request (which CORS never blocks) must get through, and a plain
 * CORS GET of `/v1/agents` must fail. Both together mean the service is up and
 * does not allow this page's origin. Returns the error to end with, or null.
 */
export async function originRefused(endpoint: string, fetchFn: typeof fetch): Promise<ClientError | null> {
  const origin = globalThis.location?.origin;
  if (typeof document === 'undefined' || !origin || origin === 'null' || isOffline()) return null;
  const target = new URL(endpoint);
  if (target.origin === origin) return null; // same origin: CORS does not apply
  const probe = new URL('/v1/agents', target).href;
  const get = (mode: RequestMode) =>
    fetchFn(probe, { mode, cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  try {
    await get('no-cors');
  } catch {
    return null; // unreachable even without CORS: the network or the service is down
  }
  try {
    const res = await get('cors');
    await res.body?.cancel();
    return null; // readable: CORS allows this origin, so the failure was something else
  } catch (err) {
    if (!(err instanceof TypeError)) return null; // a timeout proves nothing
  }
  return {
    code: 'origin_not_allowed',
    message: `this site's origin (${origin}) is not allowed by ${target.origin}: add it to ALLOWED_ORIGINS in the service's settings`,
  };
}

/** Errors of the network or of our own aborts (watchdog): worth another attempt. */
function isNetworkError(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof DOMException && (err.name === 'AbortError' || err.name === 'TimeoutError'));
}

function isEventStream(res: Response): boolean {
  return (res.headers.get('Content-Type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * Random bytes. `crypto.randomUUID` exists only in secure contexts; the widget
 * may be embedded on a plain-http page, where `getRandomValues` still works.
 */
function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A random id: 16 bytes as hex. */
function randomId(): string {
  return Array.from(randomBytes(16), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** base64url without padding: 32 bytes make 43 characters of [A-Za-z0-9_-]. */
function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

/** The service's error from an answer, or the status alone when the body is not ours or never comes. */
async function errorOf(res: Response, timeoutMs: number): Promise<ClientError> {
  let code = `http_${res.status}`;
  let message = `HTTP ${res.status}`;
  try {
    // A proxy may send headers and then stall the body: don't wait for it forever.
    const body = (await within(res.json(), timeoutMs)) as 'timeout' | { error?: { code?: string; message?: string } };
    if (body === 'timeout') throw new Error('error body stalled');
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON, or stalled: keep the status
    res.body?.cancel().catch(() => {});
  }
  return { code, message, status: res.status };
}
