/**
 * SSE helpers for Node-side tests: read a response into parsed events with
 * eventsource-parser (the same parser a client would use).
 */
import { createParser } from 'eventsource-parser';

export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: Record<string, any>;
}

export interface SseRead {
  status: number;
  headers: Headers;
  events: SseEvent[];
  comments: string[];
  raw: string;
}

/**
 * Fetch `url` and read its SSE body until it ends or `stop(events)` is true
 * (then the connection is aborted, like a client going away).
 */
export async function readSse(url: string, init: RequestInit = {}, stop: (events: SseEvent[]) => boolean = () => false): Promise<SseRead> {
  const abort = new AbortController();
  const res = await fetch(url, { ...init, signal: abort.signal });
  const out: SseRead = { status: res.status, headers: res.headers, events: [], comments: [], raw: '' };
  if (!res.body) return out;
  const parser = createParser({
    onEvent: (e) => out.events.push({ id: e.id, event: e.event, data: JSON.parse(e.data) }),
    onComment: (c) => out.comments.push(c.trim()),
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      out.raw += text;
      parser.feed(text);
      if (stop(out.events)) {
        abort.abort();
        break;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  }
  return out;
}

export const seqsOf = (events: SseEvent[]) => events.map((e) => e.data.seq as number);
export const textOf = (events: SseEvent[]) =>
  events
    .filter((e) => e.event === 'delta')
    .map((e) => e.data.text as string)
    .join('');
export const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Start a run in JSON mode; returns its id and token. */
export async function createRun(base: string, body: Record<string, unknown>): Promise<{ requestId: string; token: string }> {
  const res = await fetch(`${base}/v1/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`POST /v1/runs: ${res.status} ${await res.text()}`);
  return (await res.json()) as { requestId: string; token: string };
}

export async function waitForState(base: string, requestId: string, token: string, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${base}/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } });
    const status = (await res.json()) as Record<string, any>;
    if (status.state !== 'running') return status;
    if (Date.now() > until) throw new Error(`run ${requestId} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
