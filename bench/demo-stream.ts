/**
 * The demo events as an SSE body, framed by the service's encoder and
 * written with the service's batching (one write per macrotask), with no
 * storage and no resume. The bare Worker streams this itself; the floor's
 * Durable Object streams it across the hop. What the service costs beyond
 * either is measured against them.
 */
import { DemoOptions, demoAgent } from '../src/agents/demo/demo';
import type { RunEventBody } from '../src/events';
import { encodeEvent, encodeRetry } from '../src/sse/encode';

export interface DemoStreamBody {
  query: string;
  options?: unknown;
}

/**
 * @param onClose called once when the stream ends, or its reader goes away
 *   (a write rejects): how the floor counts streams still open
 */
export function demoStream(body: DemoStreamBody, onClose?: () => void): ReadableStream<Uint8Array> {
  const options = DemoOptions.parse(body.options ?? {});
  const requestId = `bare_${crypto.randomUUID()}`;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  void (async () => {
    let seq = 0;
    const frame = (event: RunEventBody) => encodeEvent({ requestId, seq: ++seq, ts: Date.now(), ...event } as never);
    try {
      await writer.write(encoder.encode(encodeRetry(1000) + frame({ type: 'run', agent: 'demo', createdAt: Date.now() })));
      const signal = new AbortController().signal;
      // Same batching opportunity as the service: one write per macrotask.
      let pending = '';
      let flush: Promise<void> | null = null;
      for await (const event of demoAgent.run({ requestId, query: body.query, messages: [], options }, signal, {
        env: {} as never,
        skip: 0,
      })) {
        pending += frame(event);
        flush ??= new Promise<void>((resolve) => setTimeout(resolve, 0)).then(async () => {
          const text = pending;
          pending = '';
          flush = null;
          await writer.write(encoder.encode(text));
        });
      }
      await flush;
      await writer.write(encoder.encode(pending + frame({ type: 'done', state: 'completed' })));
      await writer.close();
    } catch {
      // the client went away
    } finally {
      onClose?.();
    }
  })();
  return readable;
}

export const SSE_RESPONSE_HEADERS = { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform' };
