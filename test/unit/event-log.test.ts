import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { EventLog, MAX_BATCH_EVENTS, RECENT_EVENTS } from '../../src/run/event-log';

/** Each test gets a fresh SQLite database: an unused Durable Object. */
async function withLog<T>(fn: (log: EventLog, sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const stub = env.RUNS.get(env.RUNS.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(new EventLog(state.storage.sql), state.storage.sql));
}

const frame = (seq: number) => `id: ${seq}\nevent: delta\ndata: {"seq":${seq}}\n\n`;

function appendN(log: EventLog, n: number) {
  for (let i = 0; i < n; i++) log.append(log.nextSeq, frame(log.nextSeq));
}

describe('EventLog', () => {
  it('numbers events from 1 without gaps and refuses out-of-order seqs', () =>
    withLog((log) => {
      expect(log.nextSeq).toBe(1);
      log.append(1, frame(1));
      log.append(2, frame(2));
      expect(() => log.append(4, frame(4))).toThrow(/out of order/);
      expect(log.nextSeq).toBe(3);
    }));

  it('gives nothing more once closed, even to a reader mid-replay, and wakes waiting readers', () =>
    withLog(async (log, sql) => {
      appendN(log, RECENT_EVENTS + 600);
      log.flush();
      const first = log.readAfter(0, 4096); // an old position: served from SQLite
      expect(first.lastSeq).toBeGreaterThan(0);
      const waiting = log.waitFor(log.durableSeq, 60_000);
      sql.exec('DROP TABLE events'); // what the TTL deletion does to storage
      log.close();
      expect(log.readAfter(first.lastSeq, 4096)).toEqual({ text: '', lastSeq: first.lastSeq });
      expect(log.readAfter(RECENT_EVENTS + 10, 4096).text).toBe('');
      expect(await waiting).toBe(true);
    }));

  it('hides appended events from readers until they are stored', () =>
    withLog((log) => {
      appendN(log, 3);
      expect(log.durableSeq).toBe(0);
      expect(log.readAfter(0, 1 << 20).text).toBe('');
      log.flush();
      expect(log.durableSeq).toBe(3);
      expect(log.readAfter(0, 1 << 20)).toEqual({ text: frame(1) + frame(2) + frame(3), lastSeq: 3 });
    }));

  it('stores a macrotask worth of events as one row', () =>
    withLog(async (log, sql) => {
      appendN(log, 50);
      await new Promise((r) => setTimeout(r, 5));
      expect(log.durableSeq).toBe(50);
      expect(sql.exec('SELECT count(*) AS n FROM events').one().n).toBe(1);
    }));

  it('caps a row at MAX_BATCH_EVENTS events', () =>
    withLog((log, sql) => {
      appendN(log, MAX_BATCH_EVENTS * 2 + 1);
      log.flush();
      const rows = sql.exec<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM events ORDER BY first_seq').toArray();
      expect(rows).toEqual([
        { first_seq: 1, last_seq: MAX_BATCH_EVENTS },
        { first_seq: MAX_BATCH_EVENTS + 1, last_seq: 2 * MAX_BATCH_EVENTS },
        { first_seq: 2 * MAX_BATCH_EVENTS + 1, last_seq: 2 * MAX_BATCH_EVENTS + 1 },
      ]);
    }));

  it('reads strictly after any seq, from memory and from SQLite alike', () =>
    withLog((log, sql) => {
      const total = RECENT_EVENTS + 700; // the oldest 700 are no longer in memory
      for (let i = 0; i < total; i++) {
        log.append(log.nextSeq, frame(log.nextSeq));
        if (i % 37 === 0) log.flush(); // uneven row boundaries
      }
      log.flush();
      const reopened = new EventLog(sql); // a fresh isolate: nothing in memory
      for (const reader of [log, reopened]) {
        for (const after of [0, 1, 36, 37, 38, 699, 700, 701, total - 1, total]) {
          let cursor = after;
          let text = '';
          for (;;) {
            const part = reader.readAfter(cursor, 4096);
            if (!part.text) break;
            text += part.text;
            cursor = part.lastSeq;
          }
          const expected = Array.from({ length: total - after }, (_, i) => frame(after + 1 + i)).join('');
          expect(text).toBe(expected);
          expect(cursor).toBe(total);
        }
      }
    }));

  it('respects the byte budget but always returns at least one frame', () =>
    withLog((log) => {
      appendN(log, 10);
      log.flush();
      const one = log.readAfter(0, 1);
      expect(one).toEqual({ text: frame(1), lastSeq: 1 });
      const some = log.readAfter(0, frame(1).length * 3);
      expect(some.lastSeq).toBe(3);
    }));

  it('continues numbering after a reopen', () =>
    withLog((log, sql) => {
      appendN(log, 5);
      log.flush();
      const reopened = new EventLog(sql);
      expect(reopened.durableSeq).toBe(5);
      expect(reopened.nextSeq).toBe(6);
    }));

  it('wakes waiting readers when events are stored', () =>
    withLog(async (log) => {
      let woke = false;
      const waiting = log.waitFor(0, 10_000).then((v) => (woke = v));
      log.append(1, frame(1));
      expect(woke).toBe(false);
      log.flush();
      await waiting;
      expect(woke).toBe(true);
      await expect(log.waitFor(0, 10_000)).resolves.toBe(true); // already there: no wait
      await expect(log.waitFor(1, 20)).resolves.toBe(false); // nothing new: times out
    }));
});
