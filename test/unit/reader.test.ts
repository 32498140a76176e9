import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { EventLog } from '../../src/run/event-log';
import { FANOUT_READERS, openReader } from '../../src/sse/stream';
import { createRun, range, readAll, seqs } from './helpers';

const frame = (seq: number) => `id: ${seq}\nevent: delta\ndata: {"seq":${seq},"text":"${'x'.repeat(200)}"}\n\n`;

describe('a reader whose client stops reading', () => {
  it('is dropped after the stall timeout, while the log keeps taking events', () =>
    runInDurableObject(env.RUNS.get(env.RUNS.newUniqueId()), async (_o, state) => {
      const log = new EventLog(state.storage.sql);
      let closedAt = 0;
      const started = Date.now();
      // Never read `body`: its writes stop completing once the stream's queue is full.
      const body = openReader({
        log,
        afterSeq: 0,
        retryMs: 1000,
        heartbeatMs: 10_000,
        stallMs: 300,
        maxAgeMs: 60_000,
        ended: () => false,
        gone: () => false,
        onClose: () => (closedAt = Date.now()),
      });
      for (let i = 0; i < 2000; i++) log.append(log.nextSeq, frame(log.nextSeq));
      log.flush(); // the producer never waits for a reader
      expect(log.durableSeq).toBe(2000);
      for (let i = 0; i < 40 && closedAt === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(closedAt).toBeGreaterThan(0);
      expect(closedAt - started).toBeGreaterThanOrEqual(300);
      // Aborted, not closed: the client sees a broken stream (and resumes), never a clean end.
      const outcome = await body
        .getReader()
        .read()
        .then(
          () => 'read',
          () => 'errored',
        );
      expect(outcome).toBe('errored');
    }));
});

describe('a reader open longer than the maximum connection age', () => {
  it('is closed cleanly without done, after what it had, so the client resumes', () =>
    runInDurableObject(env.RUNS.get(env.RUNS.newUniqueId()), async (_o, state) => {
      const log = new EventLog(state.storage.sql);
      for (let i = 0; i < 3; i++) log.append(log.nextSeq, frame(log.nextSeq));
      log.flush();
      const started = Date.now();
      const body = openReader({
        log,
        afterSeq: 0,
        retryMs: 1000,
        heartbeatMs: 10_000,
        stallMs: 5_000,
        maxAgeMs: 400,
        ended: () => false,
        gone: () => false,
      });
      const text = await new Response(body).text();
      const elapsed = Date.now() - started;
      // Every stored event, then a clean end well before the 10 s heartbeat (the run is still going).
      expect(text.match(/^id: /gm)?.length).toBe(3);
      expect(text).not.toContain('keepalive');
      expect(elapsed).toBeGreaterThanOrEqual(390);
    }));
});

describe('a run with more readers than FANOUT_READERS', () => {
  it('gives every reader every event exactly once, in order, joined live or late', async () => {
    const options = { tokens: 150, delayMs: 2 };
    const { requestId, token } = await createRun({ query: 'many readers', options });
    const early = Array.from({ length: FANOUT_READERS + 6 }, () => readAll(requestId, token));
    // Some join mid-run, one resumes from the middle.
    await new Promise((r) => setTimeout(r, 100));
    const late = [readAll(requestId, token), readAll(requestId, token), readAll(requestId, token, 40)];
    const reads = await Promise.all([...early, ...late]);
    const total = reads[0]!.events.length;
    expect(total).toBe(options.tokens + 9);
    expect(reads[0]!.events.at(-1)?.event).toBe('done');
    for (const read of reads.slice(0, -1)) expect(seqs(read.events)).toEqual(range(1, total));
    expect(seqs(reads.at(-1)!.events)).toEqual(range(41, total));
  });
});
