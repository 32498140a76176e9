// When storage refuses a flush: a named error, nothing visible, frames kept
// pending until stored or discarded, seqs gap-free, and all-or-nothing rows
// when the flush runs in the Durable Object's transaction.
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { EventLog, LogWriteError, MAX_BATCH_EVENTS, MAX_ROW_BYTES, type LogSql } from '../../src/run/event-log';

/** The DO's SQLite, with statements that fail on demand (as a full disk or a too-large row would). */
class FlakySql implements LogSql {
  inserts = 0;
  /** Fail the INSERT with this 1-based number (counted from now on), or every INSERT when 'all'. */
  failInsert: number | 'all' | null = null;
  failDeletes = false;

  constructor(readonly inner: SqlStorage) {}

  exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T> {
    const verb = /^\s*(\w+)/.exec(query)?.[1]?.toUpperCase();
    if (verb === 'INSERT') {
      this.inserts++;
      if (this.failInsert === 'all' || this.failInsert === this.inserts) throw new Error('SQLITE_FULL: database or disk is full');
    }
    if (verb === 'DELETE' && this.failDeletes) throw new Error('SQLITE_FULL: database or disk is full');
    return this.inner.exec<T>(query, ...bindings);
  }

  /** Fail the `n`th INSERT from now. */
  failNth(n: number): void {
    this.inserts = 0;
    this.failInsert = n;
  }

  heal(): void {
    this.failInsert = null;
    this.failDeletes = false;
  }
}

interface Setup {
  flaky: FlakySql;
  sql: SqlStorage;
  storage: DurableObjectStorage;
  transactionSync: <T>(fn: () => T) => T;
}

/** Each test gets a fresh SQLite database: an unused Durable Object. */
async function withStorage<T>(fn: (s: Setup) => T | Promise<T>): Promise<T> {
  const stub = env.RUNS.get(env.RUNS.newUniqueId());
  return runInDurableObject(stub, (_instance, state) =>
    fn({
      flaky: new FlakySql(state.storage.sql),
      sql: state.storage.sql,
      storage: state.storage,
      transactionSync: state.storage.transactionSync.bind(state.storage),
    }),
  );
}

const frame = (seq: number, type = 'delta') => `id: ${seq}\nevent: ${type}\ndata: {"seq":${seq}}\n\n`;
/** A frame of about 300 KB: two of them never share a row. */
const wide = (seq: number) => `id: ${seq}\nevent: delta\ndata: ${'w'.repeat(300_000)}\n\n`;
/** A frame too large for any row: stored in parts. */
const huge = (seq: number) => `id: ${seq}\nevent: result\ndata: ${'h'.repeat(MAX_ROW_BYTES * 2)}\n\n`;

const count = (sql: SqlStorage, table: string) => sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table}`).one().n;
const hasTable = (sql: SqlStorage, name: string) =>
  sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;

function readAll(log: EventLog): string {
  let cursor = 0;
  let text = '';
  for (;;) {
    const part = log.readAfter(cursor, 64 * 1024);
    if (!part.text) return text;
    text += part.text;
    cursor = part.lastSeq;
  }
}

function catchError(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('EventLog when storage fails', () => {
  it('throws a LogWriteError with the cause and shows nothing: durableSeq, readers, waiters and memory unchanged', () =>
    withStorage(async ({ flaky, sql }) => {
      const log = new EventLog(flaky);
      log.append(1, frame(1));
      log.append(2, frame(2));
      log.flush();
      const waiting = log.waitFor(2, 100);
      log.append(3, frame(3));
      log.append(4, frame(4));
      flaky.failInsert = 'all';
      const err = catchError(() => log.flush());
      expect(err).toBeInstanceOf(LogWriteError);
      expect(err).toMatchObject({ name: 'LogWriteError', firstSeq: 3, lastSeq: 4, message: 'the event log could not store events 3..4' });
      expect(((err as LogWriteError).cause as Error).message).toMatch(/SQLITE_FULL/);
      expect(log.durableSeq).toBe(2);
      expect(log.nextSeq).toBe(5); // 3 and 4 are still pending
      expect(log.readAfter(0, 1 << 20)).toEqual({ text: frame(1) + frame(2), lastSeq: 2 });
      expect(log.readAfter(2, 1 << 20)).toEqual({ text: '', lastSeq: 2 });
      expect(await waiting).toBe(false); // not woken: it timed out
      expect(count(sql, 'events')).toBe(1);
      expect(log.rowsWritten).toBe(1);
      // Storage is back: the pending frames are stored as they were.
      flaky.heal();
      log.flush();
      expect(log.durableSeq).toBe(4);
      expect(readAll(log)).toBe([1, 2, 3, 4].map((s) => frame(s)).join(''));
      expect(readAll(new EventLog(sql))).toBe([1, 2, 3, 4].map((s) => frame(s)).join(''));
    }));

  it('discardPending drops what was not stored, and the next append reuses durableSeq + 1', () =>
    withStorage(({ flaky, sql }) => {
      const log = new EventLog(flaky);
      log.append(1, frame(1, 'run'));
      log.flush();
      for (let seq = 2; seq <= 6; seq++) log.append(seq, frame(seq));
      flaky.failInsert = 'all';
      expect(() => log.flush()).toThrow(LogWriteError);
      expect(log.discardPending()).toBe(5);
      expect(log.nextSeq).toBe(2);
      expect(() => log.append(7, frame(7))).toThrow(/out of order, expected 2/);
      flaky.heal();
      log.append(2, frame(2, 'error'));
      log.append(3, frame(3, 'done'));
      log.flush();
      const expected = frame(1, 'run') + frame(2, 'error') + frame(3, 'done');
      expect(readAll(log)).toBe(expected);
      expect(readAll(new EventLog(sql))).toBe(expected);
      const rows = sql.exec<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM events ORDER BY first_seq').toArray();
      expect(rows).toEqual([
        { first_seq: 1, last_seq: 1 },
        { first_seq: 2, last_seq: 3 },
      ]);
    }));

  it('hands a failed timer flush to onWriteError, not to the event loop', () =>
    withStorage(async ({ flaky }) => {
      const errors: LogWriteError[] = [];
      const log = new EventLog(flaky, { onWriteError: (err) => errors.push(err) });
      flaky.failInsert = 'all';
      log.append(1, frame(1));
      await new Promise((r) => setTimeout(r, 10));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(LogWriteError);
      expect(errors[0]).toMatchObject({ firstSeq: 1, lastSeq: 1 });
      expect(log.durableSeq).toBe(0);
      expect(log.nextSeq).toBe(2);
    }));

  it('hands a failed batch-full flush inside append to onWriteError; append itself does not throw', () =>
    withStorage(({ flaky }) => {
      const errors: LogWriteError[] = [];
      const log = new EventLog(flaky, { onWriteError: (err) => errors.push(err) });
      flaky.failInsert = 'all';
      for (let seq = 1; seq <= MAX_BATCH_EVENTS; seq++) log.append(seq, frame(seq));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ firstSeq: 1, lastSeq: MAX_BATCH_EVENTS });
      expect(log.nextSeq).toBe(MAX_BATCH_EVENTS + 1);
    }));

  it('lets onWriteError end the run from inside append: discard, then a small error and done', () =>
    withStorage(({ flaky, sql, transactionSync }) => {
      let ended = false;
      const log: EventLog = new EventLog(flaky, {
        transactionSync,
        onWriteError: () => {
          // What the run object does: drop what nobody saw, store a small end.
          log.discardPending();
          flaky.heal();
          log.append(log.nextSeq, frame(log.nextSeq, 'error'));
          log.append(log.nextSeq, frame(log.nextSeq, 'done'));
          log.flush();
          ended = true;
        },
      });
      log.append(1, frame(1, 'run'));
      log.flush();
      flaky.failInsert = 'all';
      for (let seq = 2; seq <= MAX_BATCH_EVENTS + 1; seq++) log.append(seq, frame(seq));
      expect(ended).toBe(true);
      expect(log.durableSeq).toBe(3);
      expect(readAll(new EventLog(sql))).toBe(frame(1, 'run') + frame(2, 'error') + frame(3, 'done'));
    }));

  it('without onWriteError, append throws the batch-full failure and the timer only logs it', () =>
    withStorage(async ({ flaky }) => {
      const log = new EventLog(flaky);
      flaky.failInsert = 'all';
      for (let seq = 1; seq < MAX_BATCH_EVENTS; seq++) log.append(seq, frame(seq));
      expect(() => log.append(MAX_BATCH_EVENTS, frame(MAX_BATCH_EVENTS))).toThrow(LogWriteError);
      expect(log.nextSeq).toBe(MAX_BATCH_EVENTS + 1); // the frame was added before the flush failed
      log.discardPending();
      const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        log.append(1, frame(1));
        await new Promise((r) => setTimeout(r, 10));
        expect(logged).toHaveBeenCalledOnce();
        expect(String(logged.mock.calls[0]![0])).toMatch(/could not store events 1\.\.1: SQLITE_FULL/);
      } finally {
        logged.mockRestore();
      }
      expect(log.nextSeq).toBe(2);
    }));

  it('with transactionSync, a failure midway through a multi-row flush leaves no row and no part', () =>
    withStorage(({ flaky, sql, transactionSync }) => {
      const log = new EventLog(flaky, { transactionSync });
      log.append(1, frame(1, 'run'));
      log.flush();
      // Rows: [wide 2], [wide 3, marker of 4] with 4's parts, [wide 5]: INSERTs row, row... parts..., row.
      const frames = [frame(1, 'run'), wide(2), wide(3), huge(4), wide(5)];
      for (let seq = 2; seq <= 5; seq++) log.append(seq, frames[seq - 1]!);
      for (const n of [2, 3, 4, 5, 6]) {
        flaky.failNth(n);
        expect(() => log.flush()).toThrow(LogWriteError);
        expect(count(sql, 'events')).toBe(1);
        // The lazily created parts table was rolled back with the rest.
        expect(hasTable(sql, 'frame_parts')).toBe(false);
        expect(log.durableSeq).toBe(1);
      }
      flaky.heal();
      flaky.inserts = 0;
      log.flush();
      expect(flaky.inserts).toBe(6); // 3 rows, 3 parts
      expect(count(sql, 'events')).toBe(4);
      expect(count(sql, 'frame_parts')).toBe(3);
      expect(readAll(log)).toBe(frames.join(''));
      expect(readAll(new EventLog(sql))).toBe(frames.join(''));
    }));

  it('without transactionSync, rows a failed flush did store are deleted again (at once, or before the next write)', () =>
    withStorage(({ flaky, sql }) => {
      const log = new EventLog(flaky);
      const frames = [wide(1), wide(2), wide(3)];
      for (const [i, f] of frames.entries()) log.append(i + 1, f);
      flaky.failNth(2);
      expect(() => log.flush()).toThrow(LogWriteError);
      expect(count(sql, 'events')).toBe(0); // row 1 was stored, then deleted
      // Now the delete fails too: row 1 stays for a while, but no reader sees it.
      flaky.failNth(3);
      flaky.failDeletes = true;
      expect(() => log.flush()).toThrow(LogWriteError);
      expect(count(sql, 'events')).toBe(2);
      expect(log.durableSeq).toBe(0);
      expect(log.readAfter(0, 1 << 20).text).toBe('');
      flaky.heal();
      log.discardPending();
      log.append(1, frame(1, 'error'));
      log.append(2, frame(2, 'done'));
      log.flush();
      const rows = sql.exec<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM events ORDER BY first_seq').toArray();
      expect(rows).toEqual([{ first_seq: 1, last_seq: 2 }]);
      expect(readAll(new EventLog(sql))).toBe(frame(1, 'error') + frame(2, 'done'));
    }));

  it('without transactionSync, parts a failed flush left behind are replaced, not read', () =>
    withStorage(({ flaky, sql }) => {
      const log = new EventLog(flaky);
      log.append(1, huge(1));
      flaky.failNth(2); // the second part
      expect(() => log.flush()).toThrow(LogWriteError);
      flaky.heal();
      log.discardPending();
      const other = `id: 1\nevent: result\ndata: ${'o'.repeat(MAX_ROW_BYTES + 10)}\n\n`;
      log.append(1, other);
      log.flush();
      expect(readAll(log)).toBe(other);
      expect(readAll(new EventLog(sql))).toBe(other);
    }));

  it('flushes inside an outer transactionSync (as the run ends), and a failure there rolls the outer writes back too', () =>
    withStorage(({ flaky, sql, storage, transactionSync }) => {
      sql.exec('CREATE TABLE run (id INTEGER PRIMARY KEY, state TEXT)');
      sql.exec("INSERT INTO run VALUES (1, 'running')");
      const log = new EventLog(flaky, { transactionSync });
      log.append(1, frame(1, 'run'));
      log.flush();
      const end = () =>
        storage.transactionSync(() => {
          sql.exec("UPDATE run SET state = 'completed' WHERE id = 1");
          log.append(log.nextSeq, wide(log.nextSeq));
          log.append(log.nextSeq, frame(log.nextSeq, 'done'));
          log.flush();
        });
      flaky.failNth(1);
      expect(end).toThrow(LogWriteError);
      expect(sql.exec<{ state: string }>('SELECT state FROM run').one().state).toBe('running');
      expect(count(sql, 'events')).toBe(1);
      log.discardPending();
      flaky.heal();
      end();
      expect(sql.exec<{ state: string }>('SELECT state FROM run').one().state).toBe('completed');
      expect(readAll(new EventLog(sql))).toBe(frame(1, 'run') + wide(2) + frame(3, 'done'));
    }));
});
