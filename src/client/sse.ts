/**
 * The part of an `text/event-stream` parser the client needs: each event's
 * `data` (its lines joined with `\n`), as the WHATWG HTML spec ("Server-sent
 * events", interpreting an event stream) reads it. Lines end with CRLF, LF or
 * CR, also when a chunk ends between the CR and the LF; a leading BOM, comment
 * lines and other fields (`event`, `id`, `retry`: the events carry their
 * `seq` and `type` in the JSON) are skipped; an event without `data`, or one
 * cut off by the end of the stream, is not dispatched.
 *
 * Small on purpose: it replaced eventsource-parser (~1.2 KiB gzip) in the
 * browser bundles, which have a 20 KiB budget (widget + client). The
 * server-side readers of model streams keep eventsource-parser.
 */
export function sseData(onData: (data: string) => void): (chunk: string) => void {
  let rest: string | undefined;
  let data: string[] = [];
  /** The last chunk ended with a CR: an LF starting this one is the rest of that CRLF. */
  let cr = false;
  return (chunk) => {
    if (cr && chunk[0] === '\n') chunk = chunk.slice(1);
    cr = chunk.endsWith('\r');
    if (!chunk) return;
    // Within a long line (a big `result`): nothing to split yet, so no rescan of what came before.
    if (rest !== undefined && !/[\r\n]/.test(chunk)) {
      rest += chunk;
      return;
    }
    // The first chunk of the stream may start with a BOM.
    const lines = (rest === undefined ? chunk.replace(/^\uFEFF/, '') : rest + chunk).split(/\r\n|\r|\n/);
    rest = lines.pop()!;
    for (const line of lines) {
      if (!line) {
        if (data.length) onData(data.join('\n'));
        data = [];
        continue;
      }
      const colon = line.indexOf(':');
      if ((colon < 0 ? line : line.slice(0, colon)) !== 'data') continue; // a comment (colon 0) or another field
      const value = colon < 0 ? '' : line.slice(colon + 1);
      data.push(value[0] === ' ' ? value.slice(1) : value);
    }
  };
}
