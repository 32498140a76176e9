/**
 * Look inside the SQLite files `wrangler dev --persist-to DIR` keeps for the
 * RunObject Durable Objects: what a run really stored, row by row.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface StoredRun {
  /** Rows of the `events` table: one per flushed batch, or more when a batch passed the row cap. */
  rows: number;
  /** Rows of `frame_parts`: the pieces of frames too large for one row (0 when none). */
  partRows: number;
  /** Events across those rows (the run's last seq). */
  events: number;
  /** Event types in seq order. */
  types: string[];
  /** The stored frames in seq order, whole (parts joined). */
  frames: string[];
  /** UTF-8 bytes of the largest text any row holds (`events.frames` or a part): at most MAX_ROW_BYTES. */
  maxRowBytes: number;
}

/** The stored log of run `requestId`, or null when no Durable Object file holds it. */
export function storedRun(persistDir: string, requestId: string): StoredRun | null {
  const dir = join(persistDir, 'v3/do/edgestream-RunObject');
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sqlite') || file === 'metadata.sqlite') continue;
    const db = new DatabaseSync(join(dir, file), { readOnly: true });
    try {
      // An object that was asked but created nothing (a refused start) has a file without tables.
      const hasRun = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run'").get() !== undefined;
      if (!hasRun) continue;
      const run = db.prepare('SELECT request_id FROM run').get() as { request_id: string } | undefined;
      if (run?.request_id !== requestId) continue;
      return readLog(db);
    } finally {
      db.close();
    }
  }
  return null;
}

function readLog(db: DatabaseSync): StoredRun {
  const rows = db.prepare('SELECT first_seq, frames, length(CAST(frames AS BLOB)) AS bytes FROM events ORDER BY first_seq').all() as {
    first_seq: number;
    frames: string;
    bytes: number;
  }[];
  const hasParts = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'frame_parts'").get() !== undefined;
  const parts = hasParts
    ? (db.prepare('SELECT seq, text, length(CAST(text AS BLOB)) AS bytes FROM frame_parts ORDER BY seq, part').all() as {
        seq: number;
        text: string;
        bytes: number;
      }[])
    : [];
  const partsOf = new Map<number, string>();
  for (const part of parts) partsOf.set(part.seq, (partsOf.get(part.seq) ?? '') + part.text);
  // A row is a JSON array; a number in it stands for a frame of that length stored in frame_parts.
  const frames = rows.flatMap((row) =>
    (JSON.parse(row.frames) as (string | number)[]).map((slot, i) => {
      if (typeof slot === 'string') return slot;
      const frame = partsOf.get(row.first_seq + i);
      if (frame?.length !== slot) throw new Error(`frame ${row.first_seq + i}: parts hold ${frame?.length ?? 0} of ${slot} characters`);
      return frame;
    }),
  );
  const types = frames.map((frame) => /^event: (.*)$/m.exec(frame)?.[1] ?? '?');
  const maxRowBytes = Math.max(0, ...rows.map((r) => r.bytes), ...parts.map((p) => p.bytes));
  return { rows: rows.length, partRows: parts.length, events: frames.length, types, frames, maxRowBytes };
}
