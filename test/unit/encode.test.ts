import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/events';
import { KEEPALIVE, encodeComment, encodeEvent, encodeFrame, encodeRetry, singleLineJson } from '../../src/sse/encode';

const HOSTILE = [
  'two\n\nparagraphs',
  'carriage\rreturn',
  'crlf\r\nline',
  'event: done',
  '\nid: 9\ndata: {}\n\n',
  'line\u2028separator',
  'para\u2029separator',
  'nul\u0000byte',
  'retry: 1',
  ': not a comment',
  'emoji 🚀 and ünïcødé',
];

function parseAll(chunks: string[]): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  for (const chunk of chunks) parser.feed(chunk);
  return events;
}

function delta(seq: number, text: string): RunEvent {
  return { requestId: 'r1', seq, ts: 1763938800123, type: 'delta', messageId: 'm1', text };
}

describe('SSE encoder', () => {
  it('frames an event byte for byte as the contract shows', () => {
    expect(encodeEvent(delta(7, 'Hel'))).toBe(
      'id: 7\nevent: delta\ndata: {"requestId":"r1","seq":7,"type":"delta","ts":1763938800123,"messageId":"m1","text":"Hel"}\n\n',
    );
  });

  it('writes envelope fields first whatever order the object has', () => {
    const event = { type: 'done', state: 'completed', ts: 5, seq: 2, requestId: 'r' } as RunEvent;
    expect(encodeEvent(event)).toBe('id: 2\nevent: done\ndata: {"requestId":"r","seq":2,"type":"done","ts":5,"state":"completed"}\n\n');
  });

  it('encodes retry, comments and keepalive exactly', () => {
    expect(encodeRetry(1000)).toBe('retry: 1000\n\n');
    expect(encodeComment('hi')).toBe(': hi\n\n');
    expect(KEEPALIVE).toBe(': keepalive\n\n');
  });

  it('refuses CR or LF in the event name, data or comment', () => {
    expect(() => encodeFrame(1, 'del\nta', '{}')).toThrow(TypeError);
    expect(() => encodeFrame(1, 'delta', '{}\r')).toThrow(TypeError);
    expect(() => encodeComment('a\nb')).toThrow(TypeError);
  });

  it('escapes U+2028 and U+2029 so the data line stays one line for every splitter', () => {
    const json = singleLineJson({ text: 'a\u2028b\u2029c' });
    expect(json).toBe('{"text":"a\\u2028b\\u2029c"}');
    expect(JSON.parse(json)).toEqual({ text: 'a\u2028b\u2029c' });
  });

  it.each(HOSTILE)('keeps hostile text %j inside one event and round-trips it', (text) => {
    const frame = encodeEvent(delta(3, text));
    expect(frame.split('\n').filter((l) => l.startsWith('data:'))).toHaveLength(1);
    const events = parseAll([frame]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: '3', event: 'delta' });
    expect(JSON.parse(events[0]!.data).text).toBe(text);
  });

  it('round-trips a stream split at every byte boundary', () => {
    const stream = encodeRetry(1000) + HOSTILE.map((t, i) => encodeEvent(delta(i + 1, t))).join('') + KEEPALIVE;
    for (let cut = 1; cut < stream.length; cut++) {
      const events = parseAll([stream.slice(0, cut), stream.slice(cut)]);
      expect(events.map((e) => JSON.parse(e.data).text)).toEqual(HOSTILE);
      expect(events.map((e) => e.id)).toEqual(HOSTILE.map((_, i) => String(i + 1)));
    }
  });

  it('round-trips when fed one character at a time', () => {
    const stream = HOSTILE.map((t, i) => encodeEvent(delta(i + 1, t))).join('');
    const events = parseAll([...stream]);
    expect(events.map((e) => JSON.parse(e.data).text)).toEqual(HOSTILE);
  });
});
