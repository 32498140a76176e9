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

/**
 * A body's `options`: names to values. A key `__proto__` (JSON.parse makes it
 * an own key) is refused by name: a record schema would drop it silently,
 * and no agent has such an option.
 */
export const ClientOptions = z._default(
  z.pipe(
    z.unknown().check(
      z.refine((v) => !(typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__')), {
        message: 'no agent has an option named __proto__',
        path: ['__proto__'],
      }),
    ),
    z.record(z.string(), z.unknown()),
  ),
  {},
);

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
        // No bound of its own, as in v1: the 64 KiB body bounds it.
        content: z.string(),
      }),
    ),
    [],
  ),
  options: ClientOptions,
  // A client-chosen secret: a retried POST with it attaches even when the token was lost.
  startSecret: z.optional(z.string().check(z.regex(START_SECRET, 'must be 16..256 printable ASCII characters'))),
  // Human-check evidence for profiles that ask for it (README, "Deploying in public").
  ticket: z.optional(z.string().check(z.maxLength(4096))),
  turnstileToken: z.optional(z.string().check(z.maxLength(4096))),
});
export type StartRunBody = z.infer<typeof StartRunBody>;

/** The JSON body limit of `POST /v1/runs/{id}/events`: a long `result` fits, a runaway producer does not. */
export const MAX_APPEND_BODY_BYTES = 1024 * 1024;
/**
 * Events in one append at most. Below the log's MAX_BATCH_EVENTS (256), so
 * the log never stores part of an append on its own: an append is stored in
 * one transaction, with its producer's position, or not at all.
 */
export const MAX_APPEND_EVENTS = 200;
/** A producer's id: a service name or a UUID; printed in no answer but its own. */
export const PRODUCER_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** The producer headers (Durable Streams' names). */
export const PRODUCER_HEADERS = { id: 'Producer-Id', epoch: 'Producer-Epoch', seq: 'Producer-Seq' } as const;

const MessageId = z.string().check(z.minLength(1), z.maxLength(128));
const Text = (max: number) => z.string().check(z.maxLength(max));

/**
 * One event a producer appends: the contract's event bodies, without `run`
 * (the run's own) and without `requestId`, `seq`, `ts` (the run sets them).
 * Strict: an unknown field is refused, not stored.
 */
export const AppendEventBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('status'),
    status: z.string().check(z.minLength(1), z.maxLength(64)),
    message: z._default(Text(2000), ''),
  }),
  z.strictObject({ type: z.literal('plan'), steps: z.array(Text(2000)).check(z.maxLength(100)) }),
  z.strictObject({ type: z.literal('delta'), messageId: MessageId, text: z.string().check(z.minLength(1)) }),
  z.strictObject({
    type: z.literal('tool'),
    messageId: MessageId,
    name: z.string().check(z.minLength(1), z.maxLength(128)),
    phase: z.enum(['call', 'result']),
    input: z.optional(z.unknown()),
    output: z.optional(z.unknown()),
  }),
  z.strictObject({ type: z.literal('result'), messageId: MessageId, text: z.string(), data: z.optional(z.unknown()) }),
  z.strictObject({
    type: z.literal('error'),
    code: z.string().check(z.regex(/^[A-Za-z0-9._-]{1,64}$/, 'must match ^[A-Za-z0-9._-]{1,64}$')),
    message: z.string().check(z.minLength(1), z.maxLength(2000)),
    retryable: z._default(z.boolean(), false),
  }),
  z.strictObject({ type: z.literal('done'), state: z.enum(['completed', 'failed', 'cancelled']) }),
]);

export const AppendBody = z
  .array(AppendEventBody)
  .check(z.minLength(1, 'send at least one event'), z.maxLength(MAX_APPEND_EVENTS, `at most ${MAX_APPEND_EVENTS} events an append`));
export type AppendBody = z.infer<typeof AppendBody>;

/**
 * The order rules an append's events follow beyond each one's shape: the
 * run ends with `done`, so nothing follows it, and an `error` is the run's
 * failure, so `done` `failed` follows it at once, in the same append.
 */
export function appendOrderIssues(events: AppendBody): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  events.forEach((event, i) => {
    const next = events[i + 1];
    if (event.type === 'done' && next !== undefined) issues.push({ path: [i + 1], message: 'nothing may follow done: it ends the run' });
    if (event.type === 'error' && !(next?.type === 'done' && next.state === 'failed')) {
      issues.push({ path: [i], message: 'an error must be followed by {"type":"done","state":"failed"} in the same append' });
    }
  });
  return issues;
}

/** A producer's epoch or seq: a decimal integer 0..2^53-1, as Durable Streams has it. */
export function parseProducerNumber(raw: string | undefined): number | null {
  if (raw === undefined || !/^\d{1,16}$/.test(raw.trim())) return null;
  const value = Number(raw.trim());
  return Number.isSafeInteger(value) ? value : null;
}

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
