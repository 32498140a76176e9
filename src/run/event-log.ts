/**
 * The run's append-only event log over the Durable Object's SQLite.
 *
 * Events get gap-free seq numbers when appended and become readable only
 * once stored (`durableSeq`). Appends are grouped: one row holds a batch of
 * consecutive pre-encoded SSE frames, written when the current macrotask
 * ends or the batch is full. That keeps rows written per event low (the
 * per-row cost dominates; see bench/) while a reader waits at most one
 * event-loop turn for what the agent produced.
 *
 * No HTTP and no agent here: give it a `SqlStorage` and it is testable alone.
 */

/** Events per stored row at most; bounds a row's size and a flush's work. */
export const MAX_BATCH_EVENTS = 256;
/** Recently stored frames kept in memory so live readers never touch SQLite. */
export const RECENT_EVENTS = 4096;
/** Chunks a replay query returns at once; a reader comes back for more. */
const REPLAY_ROWS = 8;

export interface ReadResult {
  /** Concatenated SSE frames, in seq order. */
  text: string;
  /** The seq of the last frame in `text`; equals the `afterSeq` asked for when empty. */
  lastSeq: number;
}

export class EventLog {
  readonly #sql: SqlStorage;
  /** Appended, not yet stored. Frames at index i have seq durableSeq + 1 + i. */
  #pending: string[] = [];
  /** Stored frames kept in memory; index i has seq #recentFirst + i. */
  #recent: string[] = [];
  #recentFirst = 1;
  #durableSeq = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters = new Set<() => void>();
  /** The run's storage was deleted: nothing more to read, even for a reader mid-replay. */
  #closed = false;
  /** SQLite rows this log has written in this isolate (for the benchmark). */
  rowsWritten = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec(
      `CREATE TABLE IF NOT EXISTS events (
         first_seq INTEGER PRIMARY KEY,
         last_seq  INTEGER NOT NULL,
         frames    TEXT NOT NULL
       )`,
    );
    const row = sql.exec<{ last: number | null }>('SELECT max(last_seq) AS last FROM events').one();
    this.#durableSeq = row.last ?? 0;
    this.#recentFirst = this.#durableSeq + 1;
  }

  /** The highest stored seq: what readers may see. */
  get durableSeq(): number {
    return this.#durableSeq;
  }

  /** The seq the next appended event will get. */
  get nextSeq(): number {
    return this.#durableSeq + this.#pending.length + 1;
  }

  /**
   * Add the frame for seq `nextSeq`. It is stored by the end of this
   * macrotask (or at once when the batch is full), then readers wake.
   */
  append(seq: number, frame: string): void {
    if (seq !== this.nextSeq) throw new Error(`seq ${seq} out of order, expected ${this.nextSeq}`);
    this.#pending.push(frame);
    if (this.#pending.length >= MAX_BATCH_EVENTS) this.flush();
    else this.#flushTimer ??= setTimeout(() => this.flush(), 0);
  }

  /** Store whatever is pending as one row, then wake readers. */
  flush(): void {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    const batch = this.#pending;
    if (batch.length === 0) return;
    const first = this.#durableSeq + 1;
    const last = this.#durableSeq + batch.length;
    const cursor = this.#sql.exec(
      'INSERT INTO events (first_seq, last_seq, frames) VALUES (?, ?, ?)',
      first,
      last,
      JSON.stringify(batch),
    );
    this.rowsWritten += cursor.rowsWritten;
    this.#pending = [];
    this.#durableSeq = last;
    this.#recent.push(...batch);
    const excess = this.#recent.length - RECENT_EVENTS;
    if (excess > 0) {
      this.#recent.splice(0, excess);
      this.#recentFirst += excess;
    }
    this.#wakeAll();
  }

  /**
   * Stored frames with seq > `afterSeq`, at most about `maxBytes` of text
   * (always at least one frame when any is available).
   */
  readAfter(afterSeq: number, maxBytes: number): ReadResult {
    const from = afterSeq + 1;
    if (this.#closed || from > this.#durableSeq) return { text: '', lastSeq: afterSeq };
    if (from >= this.#recentFirst) return this.#take(this.#recent, this.#recentFirst, from, maxBytes);
    return this.#readStored(from, maxBytes);
  }

  /**
   * Resolves true once an event with seq > `afterSeq` is stored (or the log
   * is woken), false after `timeoutMs` with nothing new.
   */
  waitFor(afterSeq: number, timeoutMs: number): Promise<boolean> {
    if (this.#durableSeq > afterSeq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      // On timeout, forget the waiter: a quiet stream must not pile them up.
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }

  /**
   * The log's storage is gone (TTL deletion): readers get nothing more, so
   * one mid-replay can neither fail on a missing table nor read the rows of
   * a later run that reuses the requestId. Waiting readers wake and close.
   */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#recent = [];
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  #readStored(from: number, maxBytes: number): ReadResult {
    // The row holding `from` is the one with the largest first_seq <= from.
    const rows = this.#sql
      .exec<{ first_seq: number; frames: string }>(
        `SELECT first_seq, frames FROM events
          WHERE first_seq >= (SELECT max(first_seq) FROM events WHERE first_seq <= ?)
          ORDER BY first_seq LIMIT ?`,
        from,
        REPLAY_ROWS,
      )
      .toArray();
    let text = '';
    let lastSeq = from - 1;
    for (const row of rows) {
      const frames = JSON.parse(row.frames) as string[];
      const part = this.#take(frames, row.first_seq, Math.max(from, lastSeq + 1), maxBytes - text.length);
      if (part.lastSeq === lastSeq) break;
      text += part.text;
      lastSeq = part.lastSeq;
      // Stop at the byte budget, or when the budget cut this row short.
      if (text.length >= maxBytes || lastSeq < row.first_seq + frames.length - 1) break;
    }
    return { text, lastSeq };
  }

  #take(frames: string[], firstSeq: number, from: number, maxBytes: number): ReadResult {
    let text = '';
    let i = from - firstSeq;
    for (; i < frames.length; i++) {
      if (text.length > 0 && text.length + frames[i]!.length > maxBytes) break;
      text += frames[i]!;
    }
    return { text, lastSeq: firstSeq + i - 1 };
  }
}
