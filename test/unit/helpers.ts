/** Helpers for workerd tests: call the Worker, read SSE responses. */
import { exports } from 'cloudflare:workers';
import { createParser } from 'eventsource-parser';

export const BASE = 'https://edgestream.test';

export interface ParsedEvent {
  id: string | undefined;
  event: string | undefined;
  data: Record<string, any>;
}

export interface ReadResult {
  events: ParsedEvent[];
  comments: string[];
  retry: number | undefined;
  raw: string;
}

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

export function postRun(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call('/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Start a run (JSON mode) and return its id and token. */
export async function createRun(body: Record<string, unknown>): Promise<{ requestId: string; token: string }> {
  const res = await postRun(body);
  if (res.status !== 201) throw new Error(`expected 201, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as { requestId: string; token: string };
}

export function readEventsResponse(
  requestId: string,
  token: string,
  lastEventId?: number | string,
  extra: Record<string, string> = {},
): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, ...extra };
  if (lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);
  return call(`/v1/runs/${requestId}/events`, { headers });
}

/**
 * Read an SSE body until it ends, or until `stop` says so (then cancel it,
 * like a client going away).
 */
export async function readSse(res: Response, stop: (events: ParsedEvent[]) => boolean = () => false): Promise<ReadResult> {
  const result: ReadResult = { events: [], comments: [], retry: undefined, raw: '' };
  const parser = createParser({
    onEvent: (e) => result.events.push({ id: e.id, event: e.event, data: JSON.parse(e.data) }),
    onComment: (c) => result.comments.push(c.trim()),
    onRetry: (r) => (result.retry = r),
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    result.raw += value;
    parser.feed(value);
    if (stop(result.events)) {
      await reader.cancel();
      break;
    }
  }
  return result;
}

export async function readAll(requestId: string, token: string, lastEventId?: number): Promise<ReadResult> {
  const res = await readEventsResponse(requestId, token, lastEventId);
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}`);
  return readSse(res);
}

export function seqs(events: ParsedEvent[]): number[] {
  return events.map((e) => e.data.seq as number);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

export function text(events: ParsedEvent[]): string {
  return events
    .filter((e) => e.event === 'delta')
    .map((e) => e.data.text)
    .join('');
}

export async function waitUntilEnded(requestId: string, token: string, timeoutMs = 20_000): Promise<Record<string, any>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } });
    const status = (await res.json()) as Record<string, any>;
    if (status.state !== 'running') return status;
    if (Date.now() > until) throw new Error(`run ${requestId} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
