// The client's SSE reader (src/client/sse.ts): each event's data, whatever the line endings and chunking.
import { describe, expect, it } from 'vitest';
import { sseData } from '../../src/client/sse';

/** Feed `chunks` and return the data of every event dispatched. */
function read(chunks: string[]): string[] {
  const out: string[] = [];
  const feed = sseData((d) => out.push(d));
  for (const c of chunks) feed(c);
  return out;
}

/** Every way of cutting `text` in two, and in single characters. */
function cuts(text: string): string[][] {
  const all = [[text], [...text]];
  for (let i = 1; i < text.length; i++) all.push([text.slice(0, i), text.slice(i)]);
  return all;
}

describe('sseData', () => {
  it("reads the server's framing (id, event, data, heartbeat comments), however the stream is cut", () => {
    const stream = ': hi\n\nid: 1\nevent: run\ndata: {"seq":1}\n\n: heartbeat\n\nid: 2\nevent: delta\ndata: {"seq":2,"text":"a: b"}\n\n';
    for (const chunks of cuts(stream)) expect(read(chunks)).toEqual(['{"seq":1}', '{"seq":2,"text":"a: b"}']);
  });

  it('takes CRLF, CR and LF line ends, also a CRLF split between chunks', () => {
    for (const eol of ['\r\n', '\r', '\n']) {
      const stream = `data: one${eol}${eol}data: two${eol}data: lines${eol}${eol}`;
      for (const chunks of cuts(stream)) expect(read(chunks), JSON.stringify(chunks)).toEqual(['one', 'two\nlines']);
    }
  });

  it('takes mixed line ends: a CRLF whose LF comes alone, then an LF that ends the event', () => {
    expect(read(['data: x\r', '\n', '\n'])).toEqual(['x']);
    expect(read(['data: x\r', '\n', '\r', '\n'])).toEqual(['x']);
    expect(read(['data: x\n\r', '\n', 'data: y\r', '\r'])).toEqual(['x', 'y']);
  });

  it('strips one space after the colon, a leading BOM, and skips other fields, comments and events without data', () => {
    expect(read(['\uFEFFdata:x\n\n'])).toEqual(['x']);
    expect(read(['data:  two spaces\n\n'])).toEqual([' two spaces']);
    expect(read(['data\n\n'])).toEqual(['']);
    expect(read(['event: x\nid: 3\nretry: 10\n\n:comment\n\n'])).toEqual([]);
    expect(read(['datax: no\ndata: yes\n\n'])).toEqual(['yes']);
    expect(read(['\uFEFF'.repeat(1), 'data: bom only at the start\n\n'])).toEqual(['bom only at the start']);
  });

  it('does not dispatch an event the stream cut off', () => {
    expect(read(['data: whole\n\ndata: cut'])).toEqual(['whole']);
  });

  it('reads a long line in many chunks', () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const chunks = ['data: '];
    for (let i = 0; i < big.length; i += 16_384) chunks.push(big.slice(i, i + 16_384));
    chunks.push('\n\n');
    expect(read(chunks)).toEqual([big]);
  });
});
