/**
 * A local stand-in for a hosted OpenAI-compatible endpoint: `node:http`
 * speaking the Chat Completions streaming wire format byte for byte, from
 * recorded-format fixtures (test/fixtures/openai/*.sse). The request's
 * `model` picks the scenario, so tests drive it through the public options.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Socket } from 'node:net';

const FIXTURES = join(import.meta.dirname, '../fixtures/openai');
export const fixture = (name: string) => readFileSync(join(FIXTURES, `${name}.sse`), 'utf8');

/** The SSE events (with their trailing blank line) of a fixture. */
export const fixtureEvents = (name: string) => fixture(name).split(/(?<=\n\n)/);
const hasFixture = (name: string) => /^[a-z-]+$/.test(name) && existsSync(join(FIXTURES, `${name}.sse`));

/** Wall-clock ms with sub-ms precision, comparable across processes on this machine. */
export const preciseNow = () => performance.timeOrigin + performance.now();

export interface RecordedRequest {
  /** Path and query, as sent. */
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** Resolves when the client closed (or aborted) this request's connection. */
  closed: Promise<void>;
  closedEarly: () => boolean;
  /** For `paced-*` scenarios: each text piece and when it was written (preciseNow). */
  sent: { text: string; at: number }[];
}

export interface FakeOpenAI {
  url: string;
  baseUrl: string;
  requests: RecordedRequest[];
  close: () => Promise<void>;
}

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'x-request-id': 'req_fake123',
};

/** OpenAI's error bodies (the 401 quotes part of the key, as OpenAI's does). */
const ERRORS: Record<string, object> = {
  401: {
    error: {
      message: 'Incorrect API key provided: sk-test-*****cret.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    },
  },
  429: { error: { message: 'Rate limit reached for gpt-4o-mini.', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
  500: { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } },
  '404-model': {
    error: {
      message: 'The model `gpt-5-nope` does not exist or you do not have access to it.',
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_found',
    },
  },
  '400-context': {
    error: {
      message:
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130054 tokens. Please reduce the length of the messages.",
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    },
  },
  '429-quota': {
    error: {
      message: 'You exceeded your current quota, please check your plan and billing details.',
      type: 'insufficient_quota',
      param: null,
      code: 'insufficient_quota',
    },
  },
  // Codes that are not plain identifiers are not shown.
  '400-badcode': { error: { message: 'Bad request', type: 'Invalid Request!', param: null, code: 'Some <b>Code</b>' } },
};

const STRICT_422 = {
  object: 'error',
  message: {
    detail: [
      { type: 'extra_forbidden', loc: ['body', 'stream_options', 'include_usage'], msg: 'Extra inputs are not permitted', input: true },
    ],
  },
  type: 'invalid_request_error',
  param: null,
  code: null,
};

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Scenarios by model name. `slow-N` streams N words, 20 ms apart;
 * `paced-G-N` N words G ms apart (recording when each was written);
 * `strict` refuses `stream_options` like Mistral, then streams the plain
 * answer; `huge-3mb` streams HUGE_PIECES (about 3 MB); a fixture's name
 * streams that fixture.
 */
async function play(model: string, rec: RecordedRequest, req: IncomingMessage, res: ServerResponse, socket: Socket, done: () => boolean) {
  const body = rec.body;
  if (model === 'strict' && body?.stream_options) {
    // Mistral's answer to a field it does not know (FastAPI-style 422).
    res.writeHead(422, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(STRICT_422));
    return;
  }
  const http = /^http-(\d{3})(-[a-z]+)?$/.exec(model);
  if (http) {
    const status = Number(http[1]);
    const key = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    let error = ERRORS[`${status}${http[2] ?? ''}`] ?? { error: { message: 'error' } };
    // A server that quotes the whole key back, in the message and even as the code.
    if (http[2] === '-echo')
      error = {
        error: { message: `Incorrect API key provided: ${key}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
      };
    if (http[2] === '-keycode') error = { error: { message: `bad key ${key}`, type: key, param: null, code: key } };
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(error));
    return;
  }
  if (model === 'no-headers') return; // accepted the request, never answers: keep the socket open
  if (await playNotSse(model, res)) return;
  res.writeHead(200, SSE_HEADERS);
  const send = async (events: string[], gapMs: number) => {
    for (const e of events) {
      if (done()) return;
      res.write(e);
      if (gapMs) await wait(gapMs);
    }
  };
  const slow = /^slow-(\d+)$/.exec(model);
  if (slow) {
    await send(slowEvents(Number(slow[1])), 20);
    res.end();
    return;
  }
  const paced = /^paced-(\d+)-(\d+)$/.exec(model);
  if (paced) {
    const events = slowEvents(Number(paced[2]));
    res.write(events[0]);
    for (const [i, e] of events.slice(1, -3).entries()) {
      if (done()) return;
      await wait(Number(paced[1]));
      res.write(e);
      rec.sent.push({ text: `w${i} `, at: preciseNow() });
    }
    await send(events.slice(-3), 0);
    res.end();
    return;
  }
  switch (model) {
    case 'tool-calls':
      await send(fixtureEvents('tool-calls'), 2);
      break;
    case 'split': {
      // Awkward network chunks: mid-field, mid-JSON, a lone "\n" of the blank line.
      const bytes = fixture('plain');
      for (let i = 0; i < bytes.length; i += 7) {
        res.write(bytes.slice(i, i + 7));
        await wait(1);
      }
      break;
    }
    case 'utf8-split':
      // Multi-byte characters cut between two network writes, 10 ms apart.
      for (const piece of UTF8_PIECES) {
        const bytes = Buffer.from(textEvent(piece));
        const cut = bytes.indexOf(Buffer.from(piece)) + Buffer.from(piece.replace(/[^\p{ASCII}].*$/u, '')).length + 1;
        res.write(bytes.subarray(0, cut));
        await wait(10);
        res.write(bytes.subarray(cut));
        await wait(2);
      }
      await send(fixtureEvents('plain').slice(-3), 0);
      break;
    case 'huge-3mb': {
      // One chunk per piece, written in network chunks of an odd size, so
      // cuts fall mid-event and mid-character; as fast as the socket drains.
      const events = [fixtureEvents('plain')[0]!, ...hugePieces().map(textEvent), ...fixtureEvents('plain').slice(-3)];
      const bytes = Buffer.from(events.join(''));
      for (let i = 0; i < bytes.length && !done(); i += HUGE_NETWORK_CHUNK) {
        if (!res.write(bytes.subarray(i, i + HUGE_NETWORK_CHUNK))) await new Promise((r) => res.once('drain', r));
      }
      break;
    }
    case 'burst':
      // Every event in one network chunk, as a fast model behind a buffering proxy sends them.
      res.write(fixture('plain'));
      break;
    case 'cut': {
      const events = fixtureEvents('plain');
      await send(events.slice(0, 5), 2);
      socket.destroy();
      return;
    }
    case 'stall':
      await send(fixtureEvents('plain').slice(0, 3), 2);
      return; // keep the connection open, say nothing more
    case 'malformed':
      await send([...fixtureEvents('plain').slice(0, 3), 'data: {"choices":[{"delta":{"content":"x"}\n\n'], 2);
      break;
    case 'malformed-burst':
      // Good chunks and a bad one in the same network chunk.
      res.write([...fixtureEvents('plain').slice(0, 3), 'data: {"choices":[{"delta":{"content":"x"}\n\n'].join(''));
      break;
    case 'done-open':
      // The whole answer with [DONE], but the connection stays open (some proxies do this).
      await send(fixtureEvents('plain'), 2);
      return;
    case 'done-no-blank':
      // The last event without its blank line: `data: [DONE]\n`, then the end.
      await send([...fixtureEvents('plain').slice(0, -1), 'data: [DONE]\n'], 2);
      break;
    case 'done-no-newline':
      await send([...fixtureEvents('plain').slice(0, -1), 'data: [DONE]'], 2);
      break;
    case 'truncated-eof':
      // A clean end of the body in the middle of a chunk (a proxy closing early).
      await send([...fixtureEvents('plain').slice(0, 4), fixtureEvents('plain')[4]!.slice(0, 60)], 2);
      break;
    case 'no-done':
      await send(fixtureEvents('plain').slice(0, -1), 2);
      break;
    case 'error-chunk':
      await send([...fixtureEvents('plain').slice(0, 3), 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'], 2);
      break;
    default:
      await send(fixtureEvents(hasFixture(model) ? model : 'plain'), 2);
  }
  res.end();
}

/** Bytes per network write of `huge-3mb`: not a multiple of anything, so writes end mid-character. */
const HUGE_NETWORK_CHUNK = 65_537;
/** UTF-8 bytes of text `huge-3mb` streams at least. */
export const HUGE_TEXT_BYTES = 3 * 1024 * 1024;
/**
 * What a model's text can hold that an encoder may get wrong: 2-, 3- and
 * 4-byte characters, a combining accent, a ZWJ emoji sequence, a skin tone,
 * a flag, JSON's escapes (quote, backslash, newline, tab), the separators
 * JavaScript once treated as newlines, and markup.
 */
const HUGE_FRAGMENTS = [
  'Grüße aus Köln, naïve café; ',
  '日本語のテキストと中文字符。',
  'emoji 😀 🎉 👍🏽 👩‍💻 🇩🇪 ',
  'e\u0301 vs é; ',
  '"quoted" and back\\slash \\n (not a newline); ',
  'a line\nbreak, a\ttab, \r\n; ',
  'separators \u2028 and \u2029; ',
  '</script><b>not markup</b> & done; ',
  'plain ASCII words to fill the line; ',
];
let hugeCache: string[] | undefined;

/**
 * The text pieces of `huge-3mb`, each about 1 KB and numbered (so a lost,
 * doubled or reordered piece changes the whole), together at least
 * HUGE_TEXT_BYTES of UTF-8.
 */
export function hugePieces(): string[] {
  if (hugeCache) return hugeCache;
  const pieces: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < HUGE_TEXT_BYTES; i++) {
    let piece = `[${i}] `;
    for (let j = 0; Buffer.byteLength(piece) < 1000; j++) piece += HUGE_FRAGMENTS[(i + j * 7) % HUGE_FRAGMENTS.length];
    pieces.push(piece);
    bytes += Buffer.byteLength(piece);
  }
  hugeCache = pieces;
  return pieces;
}

/** Text pieces with characters of 2 and 4 bytes in UTF-8. */
export const UTF8_PIECES = ['Caf\u00e9 ', '\u{1F600}', ' na\u00efve'];

/**
 * 200 answers that are not an event stream. Returns false for the other
 * scenarios. `sse-as-text` is a stream under the wrong Content-Type.
 */
async function playNotSse(model: string, res: ServerResponse): Promise<boolean> {
  switch (model) {
    case 'json-completion':
      res.writeHead(200, { 'Content-Type': 'application/json', 'x-request-id': 'req_fake124' });
      res.end(readFileSync(join(FIXTURES, 'completion.json')));
      return true;
    case 'json-error':
      // Some proxies answer 200 with an error body.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(ERRORS['404-model']));
      return true;
    case 'json-other':
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"object":"list","data":[]}');
      return true;
    case 'html':
      // OPENAI_BASE_URL pointing at a web page.
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html><head><title>Welcome</title></head><body>It works!</body></html>');
      return true;
    case 'sse-as-text':
      res.writeHead(200, { ...SSE_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      for (const e of fixtureEvents('plain')) {
        res.write(e);
        await wait(2);
      }
      res.end();
      return true;
    default:
      return false;
  }
}

/** One OpenAI chunk carrying `content`. */
function textEvent(content: string): string {
  const chunk = JSON.parse(fixtureEvents('plain')[1]!.slice('data: '.length));
  chunk.choices[0].delta = { content };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

function slowEvents(n: number): string[] {
  const events = [fixtureEvents('plain')[0]!];
  for (let i = 0; i < n; i++) events.push(textEvent(`w${i} `));
  events.push(...fixtureEvents('plain').slice(-3)); // stop, usage, [DONE]
  return events;
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    let finished = false;
    let closedEarly = false;
    const closed = new Promise<void>((resolve) => {
      res.on('close', () => {
        closedEarly = !finished;
        resolve();
      });
    });
    res.on('finish', () => (finished = true));
    const body = raw ? JSON.parse(raw) : null;
    const rec: RecordedRequest = { path: req.url ?? '', headers: req.headers, body, closed, closedEarly: () => closedEarly, sent: [] };
    requests.push(rec);
    const { pathname, search } = new URL(req.url ?? '/', 'http://fake');
    if (pathname.startsWith('/redirect/')) {
      // A base URL that moved: the real endpoint is elsewhere.
      res.writeHead(307, { Location: `${pathname.slice('/redirect'.length)}${search}` }).end();
      return;
    }
    if (req.method !== 'POST' || pathname !== '/v1/chat/completions') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    await play(String(body?.model ?? ''), rec, req, res, req.socket, () => res.destroyed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
