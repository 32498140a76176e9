/**
 * A turn's run, read as its events: the run's own SSE stream from its
 * object, parsed, and opened again after the last seq when the run's reader
 * closes without `done` (it does so after READER_MAX_AGE_SECONDS). Used by
 * the Worker (to turn a run into a UI message stream) and by a ChatObject
 * (to assemble a finished turn's answer).
 */
import { createParser } from 'eventsource-parser';
import type { RunEvent } from '../events';
import type { Caller, ReadOutcome } from '../run/protocol';
import type { RunStub } from '../run/run-stub';

/** Reopens in a row that bring no event before the read gives up: a live run always sends something. */
const MAX_IDLE_REOPENS = 3;

/** How a read ended: the run's `done`; ended before (nothing more after the seq asked for); or the run is not there. */
export type RunReadEnd = 'done' | 'ended' | 'gone';

/** Yielded when the run's stream sent only its keepalive: a stream made from it can keep proxies awake too. */
export const KEEPALIVE = 'keepalive';

/** What reading a run needs of its stub. */
export type RunReader = Pick<RunStub, 'read'>;

/**
 * The run's events after `afterSeq`, starting with the already opened
 * `first` read. Stopping the iteration cancels the open stream.
 */
export async function* runEvents(
  run: RunReader,
  caller: Caller,
  afterSeq: number,
  first?: ReadOutcome,
): AsyncGenerator<RunEvent | typeof KEEPALIVE, RunReadEnd> {
  let seq = afterSeq;
  let idle = 0;
  let read = first ?? (await run.read(caller, seq));
  for (;;) {
    if (read.kind === 'no_content') return 'ended';
    // Refused (reader limit) or not found: this read cannot go on.
    if (read.kind !== 'stream') return 'gone';
    const parsed: RunEvent[] = [];
    let comments = 0;
    const parser = createParser({
      onEvent: (e) => parsed.push(JSON.parse(e.data) as RunEvent),
      onComment: () => comments++,
    });
    const reader = read.body.pipeThrough(new TextDecoderStream()).getReader();
    let progressed = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        comments = 0;
        parser.feed(value);
        if (parsed.length === 0 && comments > 0) yield KEEPALIVE;
        for (const event of parsed.splice(0)) {
          // A reopened stream starts after `seq`; never hand on an event twice.
          if (event.seq <= seq) continue;
          seq = event.seq;
          progressed = true;
          yield event;
          if (event.type === 'done') return 'done';
        }
      }
    } finally {
      // Also when the consumer stops early: the run's object then closes this reader.
      await reader.cancel().catch(() => {});
    }
    idle = progressed ? 0 : idle + 1;
    if (idle > MAX_IDLE_REOPENS) return 'gone';
    read = await run.read(caller, seq);
  }
}
