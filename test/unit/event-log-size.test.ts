// Row sizes of the event log: no stored row over MAX_ROW_BYTES, whatever the
// frames, and every frame read back whole and byte-identical, from memory
// and from SQLite alike.
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { afterAll, describe, expect, it } from 'vitest';
import { EventLog, MAX_BATCH_EVENTS, MAX_ROW_BYTES } from '../../src/run/event-log';

/** Each test gets a fresh SQLite database: an unused Durable Object. */
async function withSql<T>(fn: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  const stub = env.RUNS.get(env.RUNS.newUniqueId());
  return runInDurableObject(stub, (_instance, state) => fn(state.storage.sql));
}

const encoder = new TextEncoder();
const utf8 = (s: string) => encoder.encode(s).length;

/** UTF-8 sizes of every stored row, as SQLite counts them. */
function storedSizes(sql: SqlStorage): { events: number[]; parts: number[] } {
  const events = sql.exec<{ n: number }>('SELECT length(CAST(frames AS BLOB)) AS n FROM events ORDER BY first_seq').toArray();
  const hasParts = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'frame_parts'").toArray().length > 0;
  const parts = hasParts
    ? sql.exec<{ n: number }>('SELECT length(CAST(text AS BLOB)) AS n FROM frame_parts ORDER BY seq, part').toArray()
    : [];
  return { events: events.map((r) => r.n), parts: parts.map((r) => r.n) };
}

function expectAllUnderCap(sql: SqlStorage): { events: number[]; parts: number[] } {
  const sizes = storedSizes(sql);
  for (const n of [...sizes.events, ...sizes.parts]) expect(n).toBeLessThanOrEqual(MAX_ROW_BYTES);
  return sizes;
}

/** A deterministic mix of ASCII, 2-, 3- and 4-byte characters (emoji are surrogate pairs). */
function mixedText(units: number, seed: number): string {
  const alphabet = ['a', 'b', ' ', 'é', 'ß', '中', '文', '😀', '🚀', '"', '\\'];
  let state = seed >>> 0;
  const out: string[] = [];
  let length = 0;
  while (length < units) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const ch = alphabet[state % alphabet.length]!;
    out.push(ch);
    length += ch.length;
  }
  return out.join('');
}

const frameOf = (seq: number, type: string, text: string) => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ seq, type, text })}\n\n`;

/** Read everything after `after` in reads of `budget`; each read must be whole consecutive frames. */
function readAll(log: EventLog, frames: string[], after: number, budget: number): string {
  let cursor = after;
  let text = '';
  for (;;) {
    const part = log.readAfter(cursor, budget);
    if (!part.text) break;
    expect(part.lastSeq).toBeGreaterThan(cursor);
    // Whole frames only, in order: exactly the frames cursor+1..lastSeq.
    expect(part.text === frames.slice(cursor, part.lastSeq).join('')).toBe(true);
    text += part.text;
    cursor = part.lastSeq;
  }
  expect(cursor).toBe(frames.length);
  return text;
}

const figures: string[] = [];
afterAll(() => console.log(`\nevent log row sizes (cap ${MAX_ROW_BYTES} bytes):\n${figures.join('\n')}\n`));

describe('EventLog row sizes', () => {
  it('stores a 3 MB frame in parts under the cap, never splitting a surrogate pair, and reads it back whole', () =>
    withSql((sql) => {
      const log = new EventLog(sql);
      const frames: string[] = [];
      const add = (frame: string) => {
        frames.push(frame);
        log.append(frames.length, frame);
      };
      for (let i = 0; i < 5; i++) add(frameOf(frames.length + 1, 'delta', `small ${i} é😀`));
      const bigSeq = frames.length + 1;
      // About 3 MB. Part 0 ends 2 bytes short of the cap: the emoji after it would straddle the cut.
      // Part 1 is the emoji, filler, and an emoji whose last byte is the cap's.
      const head = `id: ${bigSeq}\nevent: result\ndata: {"text":"`;
      const big =
        head +
        'a'.repeat(MAX_ROW_BYTES - utf8(head) - 2) +
        '😀' +
        'x'.repeat(MAX_ROW_BYTES - 8) +
        '😀' +
        mixedText(1_200_000, 7) +
        '"}\n\n';
      add(big);
      for (let i = 0; i < 4; i++) add(frameOf(frames.length + 1, 'delta', `after ${i} 中文`));
      log.flush();

      const sizes = expectAllUnderCap(sql);
      expect(sizes.events.length).toBe(1); // the small frames and the big one's marker share one row
      const parts = sql
        .exec<{ text: string; n: number }>(
          'SELECT text, length(CAST(text AS BLOB)) AS n FROM frame_parts WHERE seq = ? ORDER BY part',
          bigSeq,
        )
        .toArray();
      expect(parts.length).toBeGreaterThanOrEqual(6);
      expect(parts[0]!.n).toBe(MAX_ROW_BYTES - 2);
      expect(parts[1]!.text.startsWith('😀')).toBe(true);
      expect(parts[1]!.n).toBe(MAX_ROW_BYTES);
      for (const part of parts) {
        expect(part.n).toBe(utf8(part.text)); // no lone surrogate turned into U+FFFD
        expect(/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(part.text)).toBe(false);
      }
      expect(parts.map((p) => p.text).join('') === big).toBe(true);
      figures.push(
        `  3 MB frame (${utf8(big)} bytes): ${parts.length} parts of ${parts.map((p) => p.n).join(', ')} bytes; its row ${sizes.events[0]} bytes`,
      );

      const reopened = new EventLog(sql); // a fresh isolate: nothing in memory
      const all = frames.join('');
      for (const reader of [log, reopened]) {
        for (let after = 0; after <= frames.length; after++) {
          for (const budget of [1, 4096, 64 * 1024, 8 * 1024 * 1024]) {
            const text = readAll(reader, frames, after, budget);
            expect(text === frames.slice(after).join('')).toBe(true);
          }
        }
        // At the big frame with a small budget: that one frame, whole.
        expect(reader.readAfter(bigSeq - 1, 1).lastSeq).toBe(bigSeq);
        expect(reader.readAfter(bigSeq - 1, 1).text === big).toBe(true);
        // Before it with a small budget: stops short of it rather than overshooting.
        expect(reader.readAfter(bigSeq - 3, 4096).lastSeq).toBe(bigSeq - 1);
        expect(readAll(reader, frames, 0, 64 * 1024) === all).toBe(true);
      }
    }));

  it('splits batches of mid-size frames by bytes, filling each row close to the cap', () =>
    withSql((sql) => {
      const log = new EventLog(sql);
      const frames: string[] = [];
      const flushEnds: number[] = [];
      for (let round = 0; round < 4; round++) {
        // Fewer than MAX_BATCH_EVENTS per flush: each flush's rows are split by bytes alone.
        for (let i = 0; i < 150; i++) {
          const seq = frames.length + 1;
          const frame = frameOf(seq, 'delta', mixedText(2000 + ((seq * 7919) % 30000), seq));
          frames.push(frame);
          log.append(seq, frame);
        }
        log.flush();
        flushEnds.push(frames.length);
      }
      const sizes = expectAllUnderCap(sql);
      expect(sizes.parts).toEqual([]); // none is too large for a row
      const rows = sql
        .exec<{ first_seq: number; last_seq: number; n: number }>(
          'SELECT first_seq, last_seq, length(CAST(frames AS BLOB)) AS n FROM events ORDER BY first_seq',
        )
        .toArray();
      // Packed greedily: a row that is not its flush's last is full (the next frame did not fit).
      for (const row of rows) {
        if (flushEnds.includes(row.last_seq)) continue;
        const next = frames[row.last_seq]!; // seq last_seq + 1
        expect(row.n + 1 + utf8(JSON.stringify(next))).toBeGreaterThan(MAX_ROW_BYTES);
      }
      const total = sizes.events.reduce((a, b) => a + b, 0);
      figures.push(
        `  600 mid-size frames (${total} bytes in 4 flushes): ${rows.length} rows, largest ${Math.max(...sizes.events)} bytes, mean ${Math.round(total / rows.length)}`,
      );
      const reopened = new EventLog(sql);
      for (const reader of [log, reopened]) {
        for (const after of [0, 1, rows[1]!.first_seq - 1, rows[1]!.first_seq, 299, 300, 599, 600]) {
          expect(readAll(reader, frames, after, 64 * 1024) === frames.slice(after).join('')).toBe(true);
        }
      }
    }));

  it('counts JSON escapes: quotes fill a row at half the characters, control characters go to parts', () =>
    withSql((sql) => {
      const log = new EventLog(sql);
      // 200k quotes (or backslashes): 200 KB of text, 400 KB as JSON: two of them need two rows.
      const quotes = `id: 1\n${'"'.repeat(200_000)}\n\n`;
      const backslashes = `id: 2\n${'\\'.repeat(200_000)}\n\n`;
      // 100k U+0001: 100 KB of text but 600 KB as JSON (\u0001): stored in parts, one 100 KB part.
      const controls = `id: 3\n${'\u0001'.repeat(100_000)}\n\n`;
      // One byte under the cap as a row (`["id: 4\\n` 9 bytes, `\\n\\n"]` 6): fits a row by itself.
      const nearCap = `id: 4\n${'é'.repeat((MAX_ROW_BYTES - 16) / 2)}\n\n`;
      const frames = [quotes, backslashes, controls, nearCap];
      for (const [i, f] of frames.entries()) log.append(i + 1, f);
      log.flush();
      const sizes = expectAllUnderCap(sql);
      expect(sizes.parts).toEqual([utf8(controls)]);
      // [quotes], [backslashes, marker of controls], [nearCap]
      expect(sizes.events.length).toBe(3);
      expect(sizes.events[1]).toBe(utf8(JSON.stringify([backslashes, controls.length])));
      expect(sizes.events[2]).toBe(MAX_ROW_BYTES - 1);
      figures.push(`  escapes: rows of ${sizes.events.join(', ')} bytes; parts ${sizes.parts.join(', ')}`);
      for (const reader of [log, new EventLog(sql)]) {
        expect(readAll(reader, frames, 0, 1) === frames.join('')).toBe(true);
      }
    }));

  it('keeps small frames in one row per flush, capped at MAX_BATCH_EVENTS', () =>
    withSql((sql) => {
      const log = new EventLog(sql);
      for (let seq = 1; seq <= MAX_BATCH_EVENTS + 10; seq++) log.append(seq, frameOf(seq, 'delta', 'hello 😀'));
      log.flush();
      expect(storedSizes(sql).events.length).toBe(2);
      expect(log.rowsWritten).toBe(2);
    }));

  it('reads rows written before the cap (one JSON array per flush, of any size) and continues after them', () =>
    withSql((sql) => {
      // What the previous version wrote: events(first_seq, last_seq, frames) with a plain JSON array.
      sql.exec('CREATE TABLE events (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, frames TEXT NOT NULL)');
      const old = [frameOf(1, 'run', ''), frameOf(2, 'delta', 'é😀'), frameOf(3, 'result', mixedText(600_000, 3))];
      sql.exec('INSERT INTO events VALUES (1, 2, ?)', JSON.stringify(old.slice(0, 2)));
      sql.exec('INSERT INTO events VALUES (3, 3, ?)', JSON.stringify(old.slice(2)));
      const oldRow = storedSizes(sql).events[1]!;
      expect(oldRow).toBeGreaterThan(MAX_ROW_BYTES); // over the cap: the reason for it
      const log = new EventLog(sql);
      expect(log.durableSeq).toBe(3);
      const big = frameOf(4, 'result', mixedText(1_500_000, 4));
      const frames = [...old, big, frameOf(5, 'done', '')];
      log.append(4, big);
      log.append(5, frames[4]!);
      log.flush();
      const sizes = storedSizes(sql);
      for (const n of [...sizes.events.slice(2), ...sizes.parts]) expect(n).toBeLessThanOrEqual(MAX_ROW_BYTES);
      figures.push(
        `  old rows of ${sizes.events.slice(0, 2).join(', ')} bytes read back; new rows ${sizes.events.slice(2).join(', ')}, parts ${sizes.parts.join(', ')}`,
      );
      for (const reader of [log, new EventLog(sql)]) {
        for (let after = 0; after <= frames.length; after++) {
          expect(readAll(reader, frames, after, 64 * 1024) === frames.slice(after).join('')).toBe(true);
        }
      }
    }));
});
