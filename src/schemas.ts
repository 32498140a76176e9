/**
 * zod schemas for what crosses the HTTP boundary. `zod/mini`: the same
 * validation as classic zod at a tenth of the Worker's bundle (classic zod
 * was ~450 KB of a ~510 KB Worker).
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A start secret: long enough not to be guessed, printable so it survives any transport. */
export const START_SECRET = /^[\x21-\x7e]{16,256}$/;
/** The JSON body limit of `POST /v1/runs`. */
export const MAX_BODY_BYTES = 64 * 1024;

// A missing field says "Required", as the contract's example does, rather
// than zod's "Invalid input: expected string, received undefined".
// zod/mini ships no messages; English ones, for every issue we report.
z.config(en());
z.config({ customError: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'Required' : undefined) });

export const StartRunBody = z.object({
  // Length in UTF-16 code units (JavaScript's `length`), as the client sees it.
  query: z.string().check(z.minLength(1), z.maxLength(16_000)),
  // Any string: one no registry knows is `unknown_agent`, not `invalid_request`.
  agent: z.optional(z.string()),
  requestId: z.optional(z.string().check(z.regex(REQUEST_ID, 'must match ^[A-Za-z0-9._:-]{1,128}$'))),
  // No count limit of its own: the 64 KiB body limit bounds it.
  messages: z._default(
    z.array(
      z.object({
        role: z.enum(['system', 'user', 'assistant']),
        content: z.string().check(z.maxLength(64_000)),
      }),
    ),
    [],
  ),
  options: z._default(z.record(z.string(), z.unknown()), {}),
  // A client-chosen secret: a retried POST with it attaches even when the token was lost.
  startSecret: z.optional(z.string().check(z.regex(START_SECRET, 'must be 16..256 printable ASCII characters'))),
  // Human-check evidence for profiles that ask for it (README, "Deploying in public").
  ticket: z.optional(z.string().check(z.maxLength(4096))),
  turnstileToken: z.optional(z.string().check(z.maxLength(4096))),
});
export type StartRunBody = z.infer<typeof StartRunBody>;

/**
 * `Last-Event-ID`: the last seq the client has. Untrusted: a decimal
 * integer >= 0, at most 15 digits (stays a safe integer).
 */
export function parseLastEventId(raw: string | undefined | null): number | null {
  if (raw === undefined || raw === null) return 0;
  const value = raw.trim();
  if (!/^\d{1,15}$/.test(value)) return null;
  return Number(value);
}

export function zodIssues(error: z.core.$ZodError, prefix: (string | number)[] = []) {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    message: issue.message,
  }));
}

export function describeIssues(issues: { path: (string | number)[]; message: string }[]): string {
  return issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
