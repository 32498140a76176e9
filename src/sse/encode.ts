/**
 * Server-Sent Events framing: pure string functions.
 *
 * Framing safety rests on two facts: `id` and `event` are produced by the
 * service (a seq number and a fixed type name), and `data` is always one
 * line of JSON. JSON.stringify escapes \n and \r inside strings; it leaves
 * U+2028/U+2029 raw, which the SSE parser ignores but some JS line splitters
 * do not, so we escape them too.
 */
import type { RunEvent } from '../events';

const LINE_SEPARATORS = /[\u2028\u2029]/g;
const FIELD_SAFE = /^[^\r\n]*$/;

/** JSON that is guaranteed to be a single line. */
export function singleLineJson(value: unknown): string {
  return JSON.stringify(value).replace(LINE_SEPARATORS, (ch) => (ch === '\u2028' ? '\\u2028' : '\\u2029'));
}

/**
 * One SSE event: `id:`, `event:`, one `data:` line, blank line.
 * @example encodeFrame(7, 'delta', '{"seq":7}') === 'id: 7\nevent: delta\ndata: {"seq":7}\n\n'
 */
export function encodeFrame(id: number, event: string, data: string): string {
  if (!FIELD_SAFE.test(event) || !FIELD_SAFE.test(data)) {
    // [spec] a line break would end the field and let the rest be read as a new field.
    throw new TypeError('SSE event name and data must not contain CR or LF');
  }
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}

/** Serialise a run event: envelope fields first, then the type's fields. */
export function encodeEvent(event: RunEvent): string {
  const { requestId, seq, type, ts, ...fields } = event;
  return encodeFrame(seq, type, singleLineJson({ requestId, seq, type, ts, ...fields }));
}

/** A comment line; clients ignore it, proxies see bytes flowing. */
export function encodeComment(text: string): string {
  if (!FIELD_SAFE.test(text)) throw new TypeError('SSE comment must not contain CR or LF');
  return `: ${text}\n\n`;
}

/** The reconnection delay hint, sent first on every stream. */
export function encodeRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}

export const KEEPALIVE = encodeComment('keepalive');
