/**
 * A local stand-in for Anthropic's Messages API: `node:http` speaking the
 * streaming wire format byte for byte, from recorded-format fixtures
 * (test/fixtures/anthropic/*.sse). It refuses what the real API refuses
 * (no `x-api-key`, no `anthropic-version`, no `max_tokens`, a `system` role
 * among the messages), records every request, and plays the scenario the
 * request's `model` names, so tests drive it through the public options.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Socket } from 'node:net';

const FIXTURES = join(import.meta.dirname, '../fixtures/anthropic');
export const fixture = (name: string) => readFileSync(join(FIXTURES, `${name}.sse`), 'utf8');
/** The SSE events (each with its trailing blank line) of a fixture. */
export const fixtureEvents = (name: string) => fixture(name).split(/(?<=\n\n)/);
const hasFixture = (name: string) => /^[a-z-]+$/.test(name) && existsSync(join(FIXTURES, `${name}.sse`));

/** The text of the `plain` fixture (and of any model without a scenario). */
export const PLAIN_TEXT = 'Resumable streams keep every token: the log is the source of truth.';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** Resolves when the client closed (or aborted) this request's connection. */
  closed: Promise<void>;
  /** The connection closed before the fake finished its answer. */
  closedEarly: () => boolean;
}

export interface FakeAnthropic {
  /** http://127.0.0.1:port: what ANTHROPIC_BASE_URL is set to (the agent appends /v1/messages). */
  url: string;
  requests: RecordedRequest[];
  close: () => Promise<void>;
}

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'request-id': 'req_011CSHoEeqs5C35K2UUqR7Fy',
  'anthropic-organization-id': '00000000-0000-4000-8000-000000000000',
};

/** The documented error type of each status (https://docs.claude.com/en/api/errors). */
const TYPE_OF_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const MESSAGES: Record<string, string> = {
  invalid_request_error: 'messages.0.content: Input should be a valid list',
  authentication_error: 'invalid x-api-key',
  billing_error: 'Your credit balance is too low to access the Anthropic API.',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'model: claude-nope',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
  overloaded_error: 'Overloaded',
};

/** Anthropic's error body. */
export const errorBody = (type: string, message = MESSAGES[type] ?? 'error') => ({
  type: 'error',
  error: { type, message },
  request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy',
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'request-id': 'req_011CSHoEeqs5C35K2UUqR7Fy' });
  res.end(JSON.stringify(body));
};

/** What the real API refuses before it streams anything; null when the request would be accepted. */
function refusal(req: IncomingMessage, body: any): [number, object] | null {
  if (!req.headers['x-api-key']) return [401, errorBody('authentication_error', 'x-api-key header is required')];
  if (!req.headers['anthropic-version']) return [400, errorBody('invalid_request_error', 'anthropic-version: header is required')];
  if (!body || typeof body !== 'object')
    return [400, errorBody('invalid_request_error', 'There was an issue with the format of your request')];
  if (typeof body.max_tokens !== 'number') return [400, errorBody('invalid_request_error', 'max_tokens: Field required')];
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    return [400, errorBody('invalid_request_error', 'messages: Field required')];
  for (const [i, m] of body.messages.entries()) {
    if (m?.role !== 'user' && m?.role !== 'assistant') {
      return [400, errorBody('invalid_request_error', `messages.${i}.role: Input should be 'user' or 'assistant'`)];
    }
    if (m.content === '') return [400, errorBody('invalid_request_error', `messages.${i}: all messages must have non-empty content`)];
  }
  if (body.temperature !== undefined && (body.temperature < 0 || body.temperature > 1)) {
    return [400, errorBody('invalid_request_error', 'temperature: range: 0..1')];
  }
  return null;
}

/** An event of the plain fixture's shape carrying `text`. */
export function textEvent(text: string, index = 0): string {
  return `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } })}\n\n`;
}

/** The plain answer with `n` words `w0 w1 ...` instead of its own text. */
export function wordEvents(n: number): string[] {
  const plain = fixtureEvents('plain');
  return [...plain.slice(0, 3), ...Array.from({ length: n }, (_, i) => textEvent(`w${i} `)), ...plain.slice(-3)];
}

const PING = 'event: ping\ndata: {"type": "ping"}\n\n';

/**
 * Scenarios by model name. `slow-N` streams N words 20 ms apart;
 * `http-S` answers status S with its documented error type
 * (`http-401-echo` quotes the key back, `http-413-html` is Cloudflare's
 * page without JSON); `error-T` sends an `error` event of type T after two
 * words; a fixture's name streams that fixture; anything else `plain`.
 */
async function play(model: string, req: IncomingMessage, res: ServerResponse, socket: Socket, done: () => boolean) {
  const http = /^http-(\d{3})(-[a-z]+)?$/.exec(model);
  if (http) {
    const status = Number(http[1]);
    if (http[2] === '-html') {
      res.writeHead(status, { 'Content-Type': 'text/html' });
      res.end(
        '<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr><center>cloudflare</center></body></html>',
      );
      return;
    }
    const type = TYPE_OF_STATUS[status] ?? 'invalid_request_error';
    const key = String(req.headers['x-api-key'] ?? '');
    json(res, status, http[2] === '-echo' ? errorBody(type, `invalid x-api-key: ${key}`) : errorBody(type));
    return;
  }
  if (model === 'no-headers') return; // accepted the request, never answers: keep the socket open
  if (model === 'html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><title>Welcome</title></head><body>It works!</body></html>');
    return;
  }
  if (model === 'json') {
    // A gateway that ignored `stream: true`.
    json(res, 200, {
      id: 'msg_01',
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text: PLAIN_TEXT }],
      stop_reason: 'end_turn',
    });
    return;
  }
  res.writeHead(200, SSE_HEADERS);
  const send = async (events: string[], gapMs: number) => {
    for (const e of events) {
      if (done()) return;
      res.write(e);
      if (gapMs) await wait(gapMs);
    }
  };
  const plain = fixtureEvents('plain');
  const slow = /^slow-(\d+)$/.exec(model);
  if (slow) {
    await send(wordEvents(Number(slow[1])), 20);
    res.end();
    return;
  }
  const midError = /^error-([a-z_]+)$/.exec(model);
  if (midError && !hasFixture(model)) {
    const events = fixtureEvents('error-overloaded');
    const last = events
      .pop()!
      .replace('"overloaded_error"', JSON.stringify(midError[1]))
      .replace('"Overloaded"', JSON.stringify(MESSAGES[midError[1]!] ?? 'error'));
    await send([...events, last], 2);
    res.end();
    return;
  }
  switch (model) {
    case 'split': {
      // Awkward network chunks: mid-field, mid-JSON, a lone "\n" of the blank line.
      const bytes = fixture('plain');
      for (let i = 0; i < bytes.length && !done(); i += 7) {
        res.write(bytes.slice(i, i + 7));
        await wait(1);
      }
      break;
    }
    case 'tool-use-split': {
      // The tool fixture in 5-byte writes: every input_json_delta cut mid-event too.
      const bytes = fixture('tool-use');
      for (let i = 0; i < bytes.length && !done(); i += 5) {
        res.write(bytes.slice(i, i + 5));
        await wait(1);
      }
      break;
    }
    case 'burst':
      res.write(fixture('plain')); // every event in one network chunk
      break;
    case 'pings':
      // Pings before, between and after everything (the API may send "any number" of them).
      await send([PING, PING, ...plain.flatMap((e) => [e, PING])], 2);
      break;
    case 'cut':
      await send(plain.slice(0, 6), 2); // message_start, block start, ping, three words
      socket.destroy();
      return;
    case 'stall':
      await send(plain.slice(0, 4), 2);
      return; // keep the connection open, say nothing more
    case 'stop-open':
      // The whole answer, but the connection stays open (some proxies do this).
      await send(plain, 2);
      return;
    case 'no-stop':
      await send(plain.slice(0, -1), 2);
      break;
    case 'malformed':
      await send(
        [...plain.slice(0, 5), 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_\n\n'],
        2,
      );
      break;
    case 'truncated-eof':
      // A clean end of the body in the middle of an event (a proxy closing early).
      await send([...plain.slice(0, 6), plain[6]!.slice(0, 50)], 2);
      break;
    case 'unknown-events':
      // Event and block types this agent does not know: skipped, per the docs' versioning policy.
      await send(
        [
          ...plain.slice(0, 4),
          'event: future_event\ndata: {"type":"future_event","detail":{"x":1}}\n\n',
          'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x"}}}\n\n',
          ...plain.slice(4),
        ],
        2,
      );
      break;
    default:
      await send(fixtureEvents(hasFixture(model) ? model : 'plain'), 2);
  }
  res.end();
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
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
    let body: any = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      // recorded as null; refused below as the real API would
    }
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, closed, closedEarly: () => closedEarly });
    const { pathname, search } = new URL(req.url ?? '/', 'http://fake');
    if (pathname.startsWith('/redirect/')) {
      // A base URL that moved: the real endpoint is elsewhere.
      res.writeHead(307, { Location: `${pathname.slice('/redirect'.length)}${search}` }).end();
      return;
    }
    if (req.method !== 'POST' || pathname !== '/v1/messages') {
      json(res, 404, errorBody('not_found_error', 'Not Found'));
      return;
    }
    const refused = refusal(req, body);
    if (refused) {
      json(res, ...refused);
      return;
    }
    await play(String(body.model ?? ''), req, res, req.socket, () => res.destroyed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
