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
 * No row holds more than MAX_ROW_BYTES: a flush spreads its frames over as
 * many rows as that takes, and a frame too large for any row (a `result`
 * carries the whole answer) is stored in parts in `frame_parts`, its slot in
 * the row holding its length instead. All rows of one flush are written
 * together or not at all, and a failed write changes nothing readers see.
 *
 * No HTTP and no agent here: give it a `SqlStorage` and it is testable alone.
 */

/** Events per stored row at most; bounds a row's size and a flush's work. */
export const MAX_BATCH_EVENTS = 256;
/**
 * UTF-8 bytes of text one SQLite row holds at most (a row's `frames`, or one
 * part of a large frame). Cloudflare refuses rows over 2 MB; a quarter of
 * that leaves room for the row's other columns, and keeps what one replay
 * query pulls into memory small.
 */
export const MAX_ROW_BYTES = 512 * 1024;
/** Recently stored frames kept in memory so live readers never touch SQLite. */
export const RECENT_EVENTS = 4096;

export interface ReadResult {
  /** Concatenated SSE frames, in seq order. */
  text: string;
  /** The seq of the last frame in `text`; equals the `afterSeq` asked for when empty. */
  lastSeq: number;
}

/** What the log needs of `ctx.storage.sql`. */
export type LogSql = Pick<SqlStorage, 'exec'>;

export interface EventLogOptions {
  /**
   * Runs the statements of one flush as one transaction, so a flush that
   * needs several rows stores all or none of them. Pass
   * `ctx.storage.transactionSync.bind(ctx.storage)`. Without it each
   * statement stands alone, and rows a failed flush did store are deleted
   * again (at once, or before the next write if that fails too).
   */
  transactionSync?: <T>(fn: () => T) => T;
  /**
   * A flush the log started itself failed: its timer's, or the one `append`
   * makes when a batch is full (then it is called from inside `append`,
   * after the frame was added). The frames stay pending; the usual answer is
   * `discardPending()`, then a small `error` and `done`. Called for every
   * such failure. Without it, `append` throws the error and the timer logs it.
   */
  onWriteError?: (err: LogWriteError) => void;
}

/**
 * Storage refused a flush. Nothing of it became visible: `durableSeq`,
 * readers and stored rows are as before, and its frames are still pending.
 */
export class LogWriteError extends Error {
  override readonly name = 'LogWriteError';
  /** The seqs the failed flush was to store. */
  readonly firstSeq: number;
  readonly lastSeq: number;

  constructor(firstSeq: number, lastSeq: number, cause: unknown) {
    super(`the event log could not store events ${firstSeq}..${lastSeq}`, { cause });
    this.firstSeq = firstSeq;
    this.lastSeq = lastSeq;
  }
}

/**
 * One slot of a stored row (`events.frames` is a JSON array of them): the
 * frame itself, or, for a frame stored in `frame_parts`, its length in
 * UTF-16 units (so a reader can apply its budget without loading it). Rows
 * written before parts existed hold strings only and read the same way.
 */
type Slot = string | number;

/** A stored row, parsed: `slots[i]` has seq `firstSeq + i`. */
interface StoredRow {
  firstSeq: number;
  slots: Slot[];
}

export class EventLog {
  readonly #sql: LogSql;
  readonly #transactionSync: (<T>(fn: () => T) => T) | undefined;
  readonly #onWriteError: ((err: LogWriteError) => void) | undefined;
  /** Appended, not yet stored. Frames at index i have seq durableSeq + 1 + i. */
  #pending: string[] = [];
  /** UTF-16 units in #pending: more than MAX_ROW_BYTES cannot be one row. */
  #pendingChars = 0;
  /** Stored frames kept in memory; index i has seq #recentFirst + i. */
  #recent: string[] = [];
  #recentFirst = 1;
  #durableSeq = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters = new Set<() => void>();
  /** The run's storage was deleted: nothing more to read, even for a reader mid-replay. */
  #closed = false;
  /** The stored row a reader read last, parsed (see #rowAt). */
  #lastRow: StoredRow | null = null;
  /** `frame_parts` is known to exist (created lazily: most runs never need it). */
  #partsTable = false;
  /** A failed flush without a transaction may have left rows past durableSeq: delete them before writing. */
  #strayRows = false;
  /** SQLite rows this log has written in this isolate (for the benchmark). */
  rowsWritten = 0;

  /**
   * @param sql the Durable Object's `ctx.storage.sql`
   * @param options see EventLogOptions; the run object passes both
   */
  constructor(sql: LogSql, options: EventLogOptions = {}) {
    this.#sql = sql;
    this.#transactionSync = options.transactionSync;
    this.#onWriteError = options.onWriteError;
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

  /** Rows the log holds in storage (event rows and parts), for the usage budgets. */
  storedRows(): number {
    const rows = this.#sql.exec<{ n: number }>('SELECT count(*) AS n FROM events').one().n;
    const parts = this.#sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'frame_parts'")
      .one().n;
    return parts ? rows + this.#sql.exec<{ n: number }>('SELECT count(*) AS n FROM frame_parts').one().n : rows;
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
   * Frames are well-formed UTF-16, as encodeEvent's JSON always is: a lone
   * surrogate in a frame large enough to be stored in parts reads back as
   * U+FFFD.
   */
  append(seq: number, frame: string): void {
    if (seq !== this.nextSeq) throw new Error(`seq ${seq} out of order, expected ${this.nextSeq}`);
    this.#pending.push(frame);
    this.#pendingChars += frame.length;
    if (this.#pending.length >= MAX_BATCH_EVENTS) this.#flushOwn(true);
    else this.#flushTimer ??= setTimeout(() => this.#flushOwn(false), 0);
  }

  /**
   * Store whatever is pending (in as few rows as the caps allow, all in one
   * transaction), then wake readers.
   * @throws LogWriteError when storage refuses; then nothing changed and the frames stay pending
   */
  flush(): void {
    this.#clearTimer();
    const batch = this.#pending;
    if (batch.length === 0) return;
    const first = this.#durableSeq + 1;
    const last = this.#durableSeq + batch.length;
    const hadPartsTable = this.#partsTable;
    let written: number;
    try {
      const write = () => (this.#strayRows ? this.#deleteStrayRows() : 0) + this.#writeRows(batch, first);
      written = this.#transactionSync ? this.#transactionSync(write) : write();
    } catch (cause) {
      if (this.#transactionSync) {
        // Rolled back, the lazily created table included.
        this.#partsTable = hadPartsTable;
      } else {
        this.#strayRows = true;
        try {
          this.#deleteStrayRows();
        } catch {
          // Storage is still failing; #strayRows makes the next write try again first.
        }
      }
      throw new LogWriteError(first, last, cause);
    }
    this.rowsWritten += written;
    this.#pending = [];
    this.#pendingChars = 0;
    this.#durableSeq = last;
    for (const frame of batch) this.#recent.push(frame);
    const excess = this.#recent.length - RECENT_EVENTS;
    if (excess > 0) {
      this.#recent.splice(0, excess);
      this.#recentFirst += excess;
    }
    this.#wakeAll();
  }

  /**
   * Drop the frames not yet stored (after a LogWriteError, say). Nobody saw
   * them, so their seqs are free again: the next append gets `durableSeq + 1`.
   * @returns how many frames were dropped
   */
  discardPending(): number {
    this.#clearTimer();
    const dropped = this.#pending.length;
    this.#pending = [];
    this.#pendingChars = 0;
    return dropped;
  }

  /**
   * Stored frames with seq > `afterSeq`, at most about `maxBytes` of text
   * (always at least one whole frame when any is available).
   */
  readAfter(afterSeq: number, maxBytes: number): ReadResult {
    const from = afterSeq + 1;
    if (this.#closed || from > this.#durableSeq) return { text: '', lastSeq: afterSeq };
    if (from >= this.#recentFirst) return this.#take(this.#recent, this.#recentFirst, from, maxBytes);
    return this.#readStored(from, maxBytes);
  }

  /**
   * Call `wake` once, at the next store (or when the log closes); returns a
   * function that forgets it. No timer: a reader with many waits a second
   * keeps its own (see src/sse/stream.ts).
   */
  onNextStore(wake: () => void): () => void {
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
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
    this.#pendingChars = 0;
    this.#recent = [];
    this.#lastRow = null;
    this.#wakeAll();
  }

  /** A flush the log started: its failure goes to onWriteError, never out of a timer. */
  #flushOwn(fromAppend: boolean): void {
    try {
      this.flush();
    } catch (err) {
      if (!(err instanceof LogWriteError)) throw err;
      if (this.#onWriteError) this.#onWriteError(err);
      else if (fromAppend) throw err;
      // Thrown in a timer it would be uncaught; the frames stay pending for the next flush.
      else console.error(`event log: ${err.message}: ${(err.cause as Error)?.message ?? String(err.cause)}`);
    }
  }

  #clearTimer(): void {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }

  #wakeAll(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Write `batch` (seqs from `first`) as rows of at most MAX_BATCH_EVENTS frames and MAX_ROW_BYTES; returns rows written. */
  #writeRows(batch: string[], first: number): number {
    // The usual flush: one row, and no byte counting unless near the cap.
    if (batch.length <= MAX_BATCH_EVENTS && this.#pendingChars <= MAX_ROW_BYTES) {
      const json = JSON.stringify(batch);
      if (fitsRow(json)) return this.#insertRow(first, first + batch.length - 1, json);
    }
    let written = 0;
    let i = 0;
    /** JSON bytes of batch[i] when already counted by the row before (it did not fit there). */
    let carried = -1;
    while (i < batch.length) {
      const rowFirst = i;
      const slots: Slot[] = [];
      let bytes = 2; // the brackets
      for (; i < batch.length && slots.length < MAX_BATCH_EVENTS; i++) {
        const frame = batch[i]!;
        const comma = slots.length > 0 ? 1 : 0;
        const cost = carried >= 0 ? carried : jsonStringBytes(frame, MAX_ROW_BYTES - 2);
        carried = -1;
        // Too large for any row: its parts go to frame_parts, its length into the row.
        const parted = cost > MAX_ROW_BYTES - 2;
        const slotBytes = parted ? String(frame.length).length : cost;
        if (bytes + comma + slotBytes > MAX_ROW_BYTES) {
          carried = cost;
          break;
        }
        if (parted) written += this.#insertParts(first + i, frame);
        slots.push(parted ? frame.length : frame);
        bytes += comma + slotBytes;
      }
      // `bytes` counted exactly what JSON.stringify writes.
      written += this.#insertRow(first + rowFirst, first + i - 1, JSON.stringify(slots));
    }
    return written;
  }

  #insertRow(firstSeq: number, lastSeq: number, frames: string): number {
    return this.#sql.exec('INSERT INTO events (first_seq, last_seq, frames) VALUES (?, ?, ?)', firstSeq, lastSeq, frames).rowsWritten;
  }

  /** Store one frame in parts of at most MAX_ROW_BYTES each; returns rows written. */
  #insertParts(seq: number, frame: string): number {
    if (!this.#partsTable) {
      this.#sql.exec(
        `CREATE TABLE IF NOT EXISTS frame_parts (
           seq  INTEGER NOT NULL,
           part INTEGER NOT NULL,
           text TEXT NOT NULL,
           PRIMARY KEY (seq, part)
         )`,
      );
      this.#partsTable = true;
    }
    // Parts of this seq that a failed, untransacted flush left behind.
    let written = this.#sql.exec('DELETE FROM frame_parts WHERE seq = ?', seq).rowsWritten;
    let part = 0;
    for (const text of splitUtf8(frame, MAX_ROW_BYTES)) {
      written += this.#sql.exec('INSERT INTO frame_parts (seq, part, text) VALUES (?, ?, ?)', seq, part++, text).rowsWritten;
    }
    return written;
  }

  /** Rows past durableSeq can only be a failed flush's: delete them. */
  #deleteStrayRows(): number {
    const written = this.#sql.exec('DELETE FROM events WHERE first_seq > ?', this.#durableSeq).rowsWritten;
    this.#strayRows = false;
    return written;
  }

  #readParts(seq: number): string {
    let text = '';
    for (const row of this.#sql.exec<{ text: string }>('SELECT text FROM frame_parts WHERE seq = ? ORDER BY part', seq)) {
      text += row.text;
    }
    return text;
  }

  #readStored(from: number, maxBytes: number): ReadResult {
    let text = '';
    let lastSeq = from - 1;
    for (;;) {
      const row = this.#rowAt(lastSeq + 1);
      if (!row) break;
      const part = this.#take(row.slots, row.firstSeq, lastSeq + 1, maxBytes - text.length);
      if (part.lastSeq === lastSeq) break;
      text += part.text;
      lastSeq = part.lastSeq;
      // Stop at the byte budget, when the budget cut this row short, or at what is stored.
      if (text.length >= maxBytes || lastSeq < row.firstSeq + row.slots.length - 1 || lastSeq >= this.#durableSeq) break;
    }
    return { text, lastSeq };
  }

  /**
   * The stored row holding `seq` (the one with the largest first_seq <= seq).
   * A replaying reader asks for the same row several times (a row is up to
   * MAX_ROW_BYTES, a read usually less), so the last one stays parsed.
   */
  #rowAt(seq: number): StoredRow | null {
    const cached = this.#lastRow;
    if (cached && seq >= cached.firstSeq && seq < cached.firstSeq + cached.slots.length) return cached;
    // seq <= durableSeq: rows a failed flush left past it are never read.
    const found = this.#sql
      .exec<{ first_seq: number; frames: string }>(
        'SELECT first_seq, frames FROM events WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1',
        seq,
      )
      .toArray()[0];
    if (!found) return null;
    const row = { firstSeq: found.first_seq, slots: JSON.parse(found.frames) as Slot[] };
    this.#lastRow = row;
    return row;
  }

  #take(frames: readonly Slot[], firstSeq: number, from: number, maxBytes: number): ReadResult {
    let text = '';
    let i = from - firstSeq;
    for (; i < frames.length; i++) {
      const frame = frames[i]!;
      const length = typeof frame === 'string' ? frame.length : frame;
      if (text.length > 0 && text.length + length > maxBytes) break;
      text += typeof frame === 'string' ? frame : this.#readParts(firstSeq + i);
    }
    return { text, lastSeq: firstSeq + i - 1 };
  }
}

/**
 * Whether well-formed `text` fits one row. Each UTF-16 unit is at most 3
 * UTF-8 bytes (a surrogate pair is 4 for 2), so short text needs no count.
 */
function fitsRow(text: string): boolean {
  return text.length * 3 <= MAX_ROW_BYTES || utf8Bytes(text) <= MAX_ROW_BYTES;
}

/** UTF-8 bytes of `text` as SQLite stores it (a lone surrogate becomes U+FFFD: 3 bytes). */
function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 2; // 4 bytes for the pair's 2 units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * UTF-8 bytes of `JSON.stringify(text)`, quotes included; stops counting
 * once past `limit`. Escapes as V8 writes them: `\"`, `\\`, `\b\f\n\r\t`,
 * other controls and lone surrogates as `\uXXXX`.
 */
function jsonStringBytes(text: string, limit: number): number {
  let bytes = 2;
  for (let i = 0; i < text.length && bytes <= limit; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x80) bytes += c === 0x22 || c === 0x5c ? 2 : 1;
    else if (c < 0x20) bytes += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c < 0x800) bytes += 2;
    else if (c < 0xd800 || c > 0xdfff) bytes += 3;
    else if (c <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 6;
  }
  return bytes;
}

/**
 * `text` cut into pieces of at most `maxBytes` UTF-8 bytes each, never
 * between the two halves of a surrogate pair (SQLite would store each half
 * as U+FFFD).
 */
function splitUtf8(text: string, maxBytes: number): string[] {
  const parts: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    let units = 1;
    let size: number;
    if (c < 0x80) size = 1;
    else if (c < 0x800) size = 2;
    else if (c >= 0xd800 && c <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      size = 4;
      units = 2;
    } else size = 3;
    if (bytes + size > maxBytes) {
      parts.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += units;
  }
  parts.push(text.slice(start));
  return parts;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
