/**
 * Look inside the SQLite files `wrangler dev --persist-to DIR` keeps for the
 * RunObject Durable Objects: what a run really stored, row by row.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface StoredRun {
  /** Rows of the `events` table: one per flushed batch. */
  rows: number;
  /** Events across those rows (the run's last seq). */
  events: number;
  /** Event types in seq order. */
  types: string[];
}

/** The stored log of run `requestId`, or null when no Durable Object file holds it. */
export function storedRun(persistDir: string, requestId: string): StoredRun | null {
  const dir = join(persistDir, 'v3/do/edgestream-RunObject');
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sqlite') || file === 'metadata.sqlite') continue;
    const db = new DatabaseSync(join(dir, file), { readOnly: true });
    try {
      const run = db.prepare('SELECT request_id FROM run').get() as { request_id: string } | undefined;
      if (run?.request_id !== requestId) continue;
      const rows = db.prepare('SELECT frames FROM events ORDER BY first_seq').all() as { frames: string }[];
      const frames = rows.flatMap((row) => JSON.parse(row.frames) as string[]);
      const types = frames.map((frame) => /^event: (.*)$/m.exec(frame)?.[1] ?? '?');
      return { rows: rows.length, events: frames.length, types };
    } finally {
      db.close();
    }
  }
  return null;
}
