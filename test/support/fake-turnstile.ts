/**
 * A local stand-in for Cloudflare's Turnstile siteverify: `node:http` on
 * 127.0.0.1 speaking its wire format as Cloudflare's "Server-side
 * validation" page describes it. It takes `secret`, `response`, `remoteip`
 * and `idempotency_key` form-encoded (or as JSON, which siteverify accepts
 * too) and always answers JSON: `success` and `error-codes`, plus
 * `challenge_ts`, `hostname`, `action`, `cdata` on success.
 *
 * Tokens verify once: a good token checked again is `timeout-or-duplicate`,
 * unless the check repeats the first one's `idempotency_key`, which gets
 * the first answer again. Modes make it misbehave the ways a network does.
 *
 * Point a `wrangler dev` at it with `--var TURNSTILE_VERIFY_URL:<fake.url>`
 * (startDevServer's `vars`).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';

export const SITEVERIFY_PATH = '/turnstile/v0/siteverify';
/** Cloudflare: a token has at most 2048 characters. */
const MAX_TOKEN_CHARS = 2048;
/** Bodies this fake reads; siteverify requests are far smaller. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * - `normal`: siteverify's answers
 * - `hang`: takes the request, never answers (the connection stays open until close())
 * - `http-500`: a 500 with a JSON body, as an overloaded upstream might send
 * - `html`: a 200 HTML page (a proxy's or a challenge interstitial) instead of JSON
 * - `internal-error`: `success: false` with `internal-error`, which Cloudflare says may be retried
 * - `odd-json`: a 200 JSON answer without a boolean `success`
 */
export type FakeTurnstileMode = 'normal' | 'hang' | 'http-500' | 'html' | 'internal-error' | 'odd-json';

export interface SiteverifyRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as sent. */
  raw: string;
  /** The parsed fields, in the order sent (form or JSON). */
  fields: [string, string][];
  /** `fields` as an object (the last of a repeated name wins). */
  form: Record<string, string>;
  /** Resolves when the connection closed: after the answer, or when the client gave up first. */
  closed: Promise<void>;
  /** True when the client closed the connection before the fake answered. */
  abandoned: () => boolean;
}

export interface GoodTokenDetails {
  hostname?: string;
  action?: string;
  cdata?: string;
}

export interface FakeTurnstile {
  /** The siteverify URL: TURNSTILE_VERIFY_URL. */
  url: string;
  /** The secret it accepts: TURNSTILE_SECRET_KEY. */
  secret: string;
  /** Every request, in arrival order (including ones it never answered). */
  requests: SiteverifyRequest[];
  /** Make a token good (a fresh random one unless given); returns it. */
  goodToken: (token?: string, details?: GoodTokenDetails) => string;
  mode: FakeTurnstileMode;
  /** Wait this long before answering (modes other than `hang`). */
  delayMs: number;
  /** Stops listening and drops every open connection (a `hang` one too). */
  close: () => Promise<void>;
}

interface TokenState extends GoodTokenDetails {
  /** The first check's answer and idempotency key, once checked. */
  first?: { key: string | undefined; answer: object };
}

export async function startFakeTurnstile(options: { secret?: string } = {}): Promise<FakeTurnstile> {
  const secret = options.secret ?? `0x4AAAAAAA-fake-secret-${Math.random().toString(36).slice(2)}`;
  const tokens = new Map<string, TokenState>();
  const requests: SiteverifyRequest[] = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const fields = parseFields(req.headers['content-type'], raw);
      let answered = false;
      let abandoned = false;
      const closed = new Promise<void>((resolve) =>
        res.on('close', () => {
          abandoned = !answered;
          resolve();
        }),
      );
      const rec: SiteverifyRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        raw,
        fields: fields ?? [],
        form: Object.fromEntries(fields ?? []),
        closed,
        abandoned: () => abandoned,
      };
      requests.push(rec);
      if (fake.mode === 'hang') return; // never answers; close() drops the connection
      const answerNow = () => {
        if (res.destroyed) return;
        answered = true;
        respond(res, rec, fields, size > MAX_BODY_BYTES);
      };
      if (fake.delayMs > 0) setTimeout(answerNow, fake.delayMs);
      else answerNow();
    });
  });

  function respond(res: ServerResponse, rec: SiteverifyRequest, fields: [string, string][] | undefined, tooBig: boolean) {
    if (rec.path.split('?')[0] !== SITEVERIFY_PATH) return send(res, 404, 'text/plain', 'Not Found');
    if (rec.method !== 'POST') return send(res, 405, 'application/json', JSON.stringify(failure('bad-request')));
    switch (fake.mode) {
      case 'http-500':
        return send(res, 500, 'application/json', JSON.stringify(failure('internal-error')));
      case 'html':
        return send(
          res,
          200,
          'text/html; charset=UTF-8',
          '<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>',
        );
      case 'internal-error':
        return json(res, failure('internal-error'));
      case 'odd-json':
        return json(res, { result: 'ok', errors: [] });
    }
    if (!fields || tooBig) return json(res, failure('bad-request'));
    const form = Object.fromEntries(fields);
    if (!form.secret) return json(res, failure('missing-input-secret'));
    if (form.secret !== secret) return json(res, failure('invalid-input-secret'));
    const token = form.response;
    if (!token) return json(res, failure('missing-input-response'));
    const state = token.length <= MAX_TOKEN_CHARS ? tokens.get(token) : undefined;
    if (!state) return json(res, failure('invalid-input-response'));
    const key = form.idempotency_key || undefined;
    if (state.first) {
      // Cloudflare: the same idempotency_key gets the first answer again; anything else is a reuse.
      if (key !== undefined && key === state.first.key) return json(res, state.first.answer);
      return json(res, failure('timeout-or-duplicate'));
    }
    const answer = {
      success: true,
      'error-codes': [],
      challenge_ts: new Date().toISOString(),
      hostname: state.hostname ?? 'example.com',
      action: state.action ?? '',
      cdata: state.cdata ?? '',
      metadata: { interactive: false },
    };
    state.first = { key, answer };
    return json(res, answer);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const fake: FakeTurnstile = {
    url: `http://127.0.0.1:${port}${SITEVERIFY_PATH}`,
    secret,
    requests,
    mode: 'normal',
    delayMs: 0,
    goodToken(token, details = {}) {
      const t = token ?? `0.fake-token.${crypto.randomUUID()}`;
      tokens.set(t, { ...details });
      return t;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

/** Cloudflare's failure answer: `success: false` and the codes (with an empty `messages`, as it sends). */
function failure(code: string) {
  return { success: false, 'error-codes': [code], messages: [] };
}

function json(res: ServerResponse, body: object) {
  send(res, 200, 'application/json', JSON.stringify(body));
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Form or JSON fields, or undefined for a body siteverify would call malformed. */
function parseFields(contentType: string | undefined, raw: string): [string, string][] | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return [...new URLSearchParams(raw)];
  if (type === 'application/json') {
    try {
      const obj: unknown = JSON.parse(raw);
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
      return Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
    } catch {
      return undefined;
    }
  }
  return undefined;
}
