/**
 * A misbehaving edgestream, scripted per connection: cuts, stalls, sends
 * duplicates and gaps, answers 204/404/429/503. It serves one run's events
 * in the real framing, honouring Last-Event-ID, so the client can be tested
 * against every failure it must survive.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export type Step =
  | { status: number; retryAfter?: string; code?: string; stallBody?: boolean }
  /** Never answer (no headers), or reset the connection before any header, or answer 200 with an HTML page. */
  | { answer: 'never' | 'reset' | 'html' }
  | { send?: number; then?: 'cut' | 'stall' | 'close'; duplicates?: number; skip?: boolean; malformedSeq?: number };

export interface ScriptedServer {
  url: string;
  requests: { method: string; path: string; lastEventId: string | undefined; at: number; body: string }[];
  total: number;
  close: () => Promise<void>;
}

export const SCRIPTED_TOKEN = 'tok_scripted';
export const SCRIPTED_ID = 'run_scripted';

export function scriptedEvent(seq: number, total: number): string {
  const type = seq === 1 ? 'run' : seq === total ? 'done' : 'delta';
  const body =
    type === 'run' ? { agent: 'demo', createdAt: 1 } : type === 'done' ? { state: 'completed' } : { messageId: 'm1', text: `t${seq} ` };
  return `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ requestId: SCRIPTED_ID, seq, type, ts: 1, ...body })}\n\n`;
}

export async function startScriptedServer(total: number, script: Step[]): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    requests.push({ method: req.method!, path: req.url!, lastEventId, at: Date.now(), body });
    const step = script[requests.length - 1] ?? {};
    if ('answer' in step) {
      if (step.answer === 'reset') return req.socket.destroy();
      if (step.answer === 'html') return res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>Sign in to the Wi-Fi</h1>');
      return; // 'never': hold the request open without a word
    }
    if ('status' in step) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (step.retryAfter) headers['Retry-After'] = step.retryAfter;
      if (step.status === 204) return res.writeHead(204).end();
      if (step.stallBody) return void res.writeHead(step.status, headers).write('{"error":'); // and then nothing
      return res
        .writeHead(step.status, headers)
        .end(JSON.stringify({ error: { code: step.code ?? `e${step.status}`, message: 'scripted' } }));
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'X-Request-Id': SCRIPTED_ID,
      'X-Run-Token': SCRIPTED_TOKEN,
    });
    res.write('retry: 1000\n\n');
    let next = Number(lastEventId ?? 0) + 1;
    if (step.duplicates) next = Math.max(1, next - step.duplicates);
    let sent = 0;
    const limit = step.send ?? Infinity;
    while (next <= total && sent < limit) {
      if (step.skip && sent === 1) next++; // a gap after the first event
      if (next > total) break;
      if (next === step.malformedSeq) {
        // An event whose data is not JSON: the client cannot use it, so the next one looks like a gap.
        res.write(`id: ${next}\nevent: delta\ndata: {not json\n\n`);
        next++;
        sent++;
        continue;
      }
      res.write(scriptedEvent(next, total));
      next++;
      sent++;
      await new Promise((r) => setImmediate(r));
    }
    if (next > total || step.then === 'close' || step.then === undefined) return res.end();
    if (step.then === 'cut') return req.socket.destroy();
    // 'stall': keep the connection open and silent
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    total,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
