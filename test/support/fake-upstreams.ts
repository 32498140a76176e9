/**
 * Stand-ins for the backends a relay profile points at: `node:http`
 * replaying recorded-format fixtures (test/fixtures/relay/*.sse) byte for
 * byte, each with its service's real headers: the Java agent service
 * (Spring SseEmitter), the Python search service (sse-starlette), an AI SDK
 * route, another edgestream, generic text and JSON streams.
 *
 * The path picks what is played, the query how:
 *   /f/<fixture>           the fixture, one message per network write
 *   /gen/<kind>?n=N        a generated stream of N pieces (kinds below)
 *   ?gap=MS                pause between writes (default 2)
 *   ?split=B               write B bytes at a time (cuts lines, CRLFs and characters)
 *   ?burst=1               everything in one write
 *   ?cut=K                 destroy the socket after K messages
 *   ?stall=K               after K messages, say nothing more (keep the socket open)
 *   ?truncate=B            a clean end of the body after B bytes (a proxy closing early, mid-message)
 *   ?type=...              answer with this Content-Type instead
 *   ?runs=1                as an edgestream deployment: a second POST with the body's requestId is
 *                          `409 run_exists` unless it has an Authorization header or the body's
 *                          startSecret of the POST that created the run (docs/API.md "Attaching")
 *   /status/<code>         an HTTP error with a JSON body quoting the Authorization header
 *   /html, /json-error, /redirect, /no-headers, /no-content
 * A request with Last-Event-ID is answered with what follows the message of
 * that id (for streams that have ids), as a resumable server does.
 * Every request is recorded: method, path, headers, body, Last-Event-ID, and when its socket closed.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, '../fixtures/relay');
export const relayFixture = (name: string) => readFileSync(join(FIXTURES, `${name}.sse`), 'utf8');

/** A fixture's messages, each with its blank line (LF or CRLF framing). */
export const messagesOf = (wire: string) => wire.split(/(?<=\r\n\r\n|\n\n)/).filter((m) => m !== '');

/** The Content-Type and headers each service really sends. */
export const SERVICE_HEADERS: Record<string, Record<string, string>> = {
  // Spring MVC SseEmitter behind Tomcat.
  genie: { 'Content-Type': 'text/event-stream;charset=UTF-8', 'Cache-Control': 'no-cache' },
  // sse-starlette's EventSourceResponse.
  deepsearch: {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  },
  // ai's UI_MESSAGE_STREAM_HEADERS.
  'ai-sdk': {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    'x-vercel-ai-ui-message-stream': 'v1',
    'x-accel-buffering': 'no',
  },
  edgestream: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' },
  text: { 'Content-Type': 'text/event-stream' },
  json: { 'Content-Type': 'text/event-stream' },
};

export interface UpstreamRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON (raw text if it is not JSON; null when empty). */
  body: any;
  lastEventId: string | undefined;
  /** Messages written to this request's response so far. */
  written: number;
  /** Resolves when the connection closed (the response ended, or the client went away). */
  closed: Promise<void>;
  /** True when the connection closed before the response was complete. */
  closedEarly: () => boolean;
}

export interface FakeUpstreams {
  url: string;
  requests: UpstreamRequest[];
  /** The requests whose path starts with `prefix` (tests share one fake). */
  requestsTo: (prefix: string) => UpstreamRequest[];
  close: () => Promise<void>;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const compact = (o: unknown) => JSON.stringify(o);

/** A piece of a generated answer: numbered, so a lost or doubled one shows. */
export const piece = (i: number) => `w${i} `;
/** The whole answer of a generated stream of n pieces. */
export const generatedText = (n: number) => Array.from({ length: n }, (_, i) => piece(i)).join('');

/**
 * Generated streams, in each service's framing, for runs long enough to cut,
 * cancel or restart in the middle. `ids` adds `id:` lines where the service
 * can have them (edgestream always has them; genie never does).
 */
export function generated(kind: string, n: number, ids: boolean): { format: string; messages: string[] } {
  const text = generatedText(n);
  switch (kind) {
    case 'edgestream': {
      const ev = (seq: number, type: string, fields: object) =>
        `id: ${seq}\nevent: ${type}\ndata: ${compact({ requestId: 'upstream-gen', seq, type, ts: 1764615600000 + seq, ...fields })}\n\n`;
      const messages = [
        'retry: 1000\n\n',
        ev(1, 'run', { agent: 'demo', createdAt: 1764615600000 }),
        ev(2, 'status', { status: 'generating', message: 'Writing' }),
      ];
      for (let i = 0; i < n; i++) messages.push(ev(3 + i, 'delta', { messageId: 'm1', text: piece(i) }));
      messages.push(ev(3 + n, 'result', { messageId: 'm1', text }), ev(4 + n, 'done', { state: 'completed' }));
      return { format: 'edgestream', messages };
    }
    case 'genie': {
      const msg = (messageId: string, messageType: string, fields: object, isFinal = false) =>
        `data:${compact({ requestId: 'req-genie-gen', messageId, messageType, isFinal, digitalEmployee: null, planList: null, result: null, resultMap: null, ...fields })}\n\n`;
      const messages = [msg('p1', 'planning', { planList: ['写出答案'] })];
      for (let i = 0; i < n; i++) {
        messages.push(msg('a1', 'agent_stream', { result: piece(i) }));
        if (i % 25 === 24) messages.push('data:heartbeat\n\n');
      }
      messages.push(msg('a1', 'result', { result: text, resultMap: { taskSummary: text, agentType: 'react' } }, true));
      return { format: 'genie', messages };
    }
    case 'deepsearch': {
      const rid = 'req-ds-gen';
      const sse = (data: object) => `id: ${rid}\r\nevent: data\r\ndata: ${pythonJson(data)}\r\n\r\n`;
      const messages = [sse({ requestId: rid, status: 'generating', message: '正在生成答案...', isFinal: false, messageType: 'status' })];
      for (let i = 0; i < n; i++)
        messages.push(sse({ requestId: rid, query: 'q', answer: piece(i), isFinal: false, messageType: 'search' }));
      messages.push(sse({ requestId: rid, query: 'q', answer: text, isFinal: true, messageType: 'search' }));
      return { format: 'deepsearch', messages };
    }
    case 'ai-sdk': {
      let k = 0;
      const ai = (o: object) => `${ids ? `id: ${++k}\n` : ''}data: ${compact(o)}\n\n`;
      const messages = [ai({ type: 'start', messageId: 'msg-gen' }), ai({ type: 'text-start', id: 't0' })];
      for (let i = 0; i < n; i++) messages.push(ai({ type: 'text-delta', id: 't0', delta: piece(i) }));
      messages.push(ai({ type: 'text-end', id: 't0' }), ai({ type: 'finish', finishReason: 'stop' }), 'data: [DONE]\n\n');
      return { format: 'ai-sdk', messages };
    }
    case 'text': {
      const messages = Array.from({ length: n }, (_, i) => `${ids ? `id: ${i + 1}\n` : ''}data: ${piece(i)}\n\n`);
      messages.push('data: [DONE]\n\n');
      return { format: 'text', messages };
    }
    case 'json': {
      const messages = Array.from({ length: n }, (_, i) => `${ids ? `id: ${i + 1}\n` : ''}data: ${compact({ token: piece(i) })}\n\n`);
      messages.push('data: [DONE]\n\n');
      return { format: 'json', messages };
    }
    default:
      throw new Error(`no generated stream "${kind}"`);
  }
}

/** Python's `json.dumps(o, ensure_ascii=False)`: `", "` and `": "` between items. */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`)
      .join(', ')}}`;
  return JSON.stringify(value);
}

/** The format a fixture is in: its name's first part. */
const formatOfFixture = (name: string) => (name.startsWith('ai-sdk') ? 'ai-sdk' : name.split('-')[0]!);

/** What follows the message whose id is `lastEventId` (everything, when no message has it). */
function after(messages: string[], lastEventId: string | undefined): string[] {
  if (lastEventId === undefined) return messages;
  const at = messages.findIndex((m) => /^id: ?(.*?)\r?$/m.exec(m)?.[1] === lastEventId);
  return at === -1 ? messages : messages.slice(at + 1);
}

/** HTTP error bodies as the services send them; the 401 quotes the credentials it got, as some do. */
function errorBody(status: number, auth: string): object {
  if (status === 401) return { error: { code: 'invalid_api_key', message: `Incorrect key provided: ${auth}` } };
  if (status === 429) return { error: { code: 'rate_limit_exceeded', message: 'slow down' } };
  // Spring Boot's error attributes.
  return { timestamp: '2026-12-01T21:00:00.000+00:00', status, error: 'Internal Server Error', path: '/AutoAgent' };
}

/** The runs an edgestream stand-in (`?runs=1`) has created: requestId -> the startSecret it was created with. */
type Runs = Map<string, string | undefined>;

async function play(rec: UpstreamRequest, url: URL, res: ServerResponse, runs: Runs) {
  const q = url.searchParams;
  if (q.get('runs') === '1' && typeof rec.body?.requestId === 'string') {
    const id = `${q.get('t') ?? ''}:${rec.body.requestId}`; // per test (?t=), as separate deployments
    const secret = typeof rec.body.startSecret === 'string' ? rec.body.startSecret : undefined;
    if (!runs.has(id)) runs.set(id, secret);
    else if (rec.headers.authorization === undefined && (secret === undefined || runs.get(id) !== secret)) {
      res.writeHead(409, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'run_exists', message: 'a run with this requestId exists' } }));
      return;
    }
  }
  const [, route, name] = url.pathname.split('/');
  if (route === 'status') {
    const status = Number(name);
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(errorBody(status, String(rec.headers.authorization ?? ''))));
    return;
  }
  if (route === 'html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Welcome to nginx!</title>');
    return;
  }
  if (route === 'json-error') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'model_overloaded', message: 'try later' } }));
    return;
  }
  if (route === 'redirect') {
    res.writeHead(302, { Location: '/f/genie-plain' }).end();
    return;
  }
  if (route === 'no-content') {
    res.writeHead(204).end();
    return;
  }
  if (route === 'no-headers') return; // accepted the request, never answers
  let format: string;
  let messages: string[];
  if (route === 'gen') {
    ({ format, messages } = generated(name!, Number(q.get('n') ?? 50), q.get('ids') === '1'));
  } else if (route === 'f') {
    format = formatOfFixture(name!);
    messages = messagesOf(relayFixture(name!));
  } else {
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":{"code":"not_found"}}');
    return;
  }
  messages = after(messages, rec.lastEventId);
  res.writeHead(200, q.get('type') ? { ...SERVICE_HEADERS[format], 'Content-Type': q.get('type')! } : SERVICE_HEADERS[format]);
  res.flushHeaders();
  const gap = Number(q.get('gap') ?? 2);
  const cut = q.has('cut') ? Number(q.get('cut')) : Infinity;
  const stall = q.has('stall') ? Number(q.get('stall')) : Infinity;
  const gone = () => res.destroyed;
  if (q.get('burst') === '1') {
    res.end(messages.join(''));
    return;
  }
  if (q.has('truncate')) {
    res.end(Buffer.from(messages.join('')).subarray(0, Number(q.get('truncate'))));
    return;
  }
  const split = Number(q.get('split') ?? 0);
  if (split > 0) {
    const bytes = Buffer.from(messages.slice(0, Math.min(cut, messages.length)).join(''));
    for (let i = 0; i < bytes.length && !gone(); i += split) {
      res.write(bytes.subarray(i, i + split));
      await wait(gap);
    }
    if (cut < messages.length) res.socket?.destroy();
    else res.end();
    return;
  }
  for (const [i, message] of messages.entries()) {
    if (gone()) return;
    if (i === cut) {
      res.socket?.destroy(); // the connection breaks mid-stream
      return;
    }
    if (i === stall) return; // keep the socket open, say nothing more
    res.write(message);
    rec.written++;
    if (gap) await wait(gap);
  }
  res.end();
}

export async function startFakeUpstreams(): Promise<FakeUpstreams> {
  const requests: UpstreamRequest[] = [];
  const runs: Runs = new Map();
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
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const header = req.headers['last-event-id'];
    const rec: UpstreamRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body,
      lastEventId: typeof header === 'string' ? header : undefined,
      written: 0,
      closed,
      closedEarly: () => closedEarly,
    };
    requests.push(rec);
    await play(rec, new URL(req.url ?? '/', 'http://fake'), res, runs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    requestsTo: (prefix) => requests.filter((r) => r.path.startsWith(prefix)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
