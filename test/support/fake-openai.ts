/**
 * A local stand-in for a hosted OpenAI-compatible endpoint: `node:http`
 * speaking the Chat Completions streaming wire format byte for byte, from
 * recorded-format fixtures (test/fixtures/openai/*.sse). The request's
 * `model` picks the scenario, so tests drive it through the public options.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Socket } from 'node:net';

const FIXTURES = join(import.meta.dirname, '../fixtures/openai');
export const fixture = (name: string) => readFileSync(join(FIXTURES, `${name}.sse`), 'utf8');

/** The SSE events (with their trailing blank line) of a fixture. */
export const fixtureEvents = (name: string) => fixture(name).split(/(?<=\n\n)/);

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** Resolves when the client closed (or aborted) this request's connection. */
  closed: Promise<void>;
  closedEarly: () => boolean;
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

const ERRORS: Record<number, object> = {
  401: { error: { message: 'Incorrect API key provided: sk-test-*****cret.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
  429: { error: { message: 'Rate limit reached for gpt-4o-mini.', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
  500: { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } },
};

const STRICT_422 = {
  object: 'error',
  message: { detail: [{ type: 'extra_forbidden', loc: ['body', 'stream_options', 'include_usage'], msg: 'Extra inputs are not permitted', input: true }] },
  type: 'invalid_request_error',
  param: null,
  code: null,
};

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Scenarios by model name. `slow-N` streams N words, 20 ms apart; `strict`
 * refuses `stream_options` like Mistral, then streams the plain answer.
 */
async function play(model: string, body: any, res: ServerResponse, socket: Socket, done: () => boolean) {
  if (model === 'strict' && body?.stream_options) {
    // Mistral's answer to a field it does not know (FastAPI-style 422).
    res.writeHead(422, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(STRICT_422));
    return;
  }
  const http = /^http-(\d{3})$/.exec(model);
  if (http) {
    const status = Number(http[1]);
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(ERRORS[status] ?? { error: { message: 'error' } }));
    return;
  }
  if (model === 'no-headers') return; // accepted the request, never answers: keep the socket open
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
    case 'done-open':
      // The whole answer with [DONE], but the connection stays open (some proxies do this).
      await send(fixtureEvents('plain'), 2);
      return;
    case 'no-done':
      await send(fixtureEvents('plain').slice(0, -1), 2);
      break;
    case 'error-chunk':
      await send([...fixtureEvents('plain').slice(0, 3), 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'], 2);
      break;
    default:
      await send(fixtureEvents('plain'), 2);
  }
  res.end();
}

function slowEvents(n: number): string[] {
  const head = fixtureEvents('plain')[0]!;
  const events = [head];
  for (let i = 0; i < n; i++) {
    const chunk = JSON.parse(head.slice('data: '.length));
    chunk.choices[0].delta = { content: `w${i} ` };
    events.push(`data: ${JSON.stringify(chunk)}\n\n`);
  }
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
    requests.push({ path: req.url ?? '', headers: req.headers, body, closed, closedEarly: () => closedEarly });
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    await play(String(body?.model ?? ''), body, res, req.socket, () => res.destroyed);
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
