/**
 * A turn's run, read as its events: the run's own SSE stream from its
 * object, parsed, and opened again after the last seq when the run's reader
 * closes without `done` (it does so after READER_MAX_AGE_SECONDS). Used by
 * the Worker (to turn a run into a UI message stream) and by a ChatObject
 * (to assemble a finished turn's answer).
 */
import { createParser } from 'eventsource-parser';
import type { RunEvent } from '../events';
import { callerHeaders, type Caller } from '../run/protocol';

/** Reopens in a row that bring no event before the read gives up: a live run always sends something. */
const MAX_IDLE_REOPENS = 3;

/** How a read ended: the run's `done`; ended before (nothing more after the seq asked for); or the run is not there. */
export type RunReadEnd = 'done' | 'ended' | 'gone';

/** Yielded when the run's stream sent only its keepalive: a stream made from it can keep proxies awake too. */
export const KEEPALIVE = 'keepalive';

/** Whatever can open a run's events: a RunObject stub. */
export interface RunEventsSource {
  fetch(url: string, init: RequestInit): Promise<Response>;
}

/** Open the run's stream after `afterSeq` (the run's object answers 200, 204, 404 or 429). */
export function openRunEvents(run: RunEventsSource, caller: Caller, afterSeq: number): Promise<Response> {
  return run.fetch('https://run/events', { headers: callerHeaders(caller, afterSeq) });
}

/**
 * The run's events after `afterSeq`, starting with the already opened
 * `first` response. Stopping the iteration cancels the open stream.
 */
export async function* runEvents(
  run: RunEventsSource,
  caller: Caller,
  afterSeq: number,
  first?: Response,
): AsyncGenerator<RunEvent | typeof KEEPALIVE, RunReadEnd> {
  let seq = afterSeq;
  let idle = 0;
  let res = first ?? (await openRunEvents(run, caller, seq));
  for (;;) {
    if (res.status === 204) return 'ended';
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return 'gone';
    }
    const parsed: RunEvent[] = [];
    let comments = 0;
    const parser = createParser({
      onEvent: (e) => parsed.push(JSON.parse(e.data) as RunEvent),
      onComment: () => comments++,
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
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
    res = await openRunEvents(run, caller, seq);
  }
}
