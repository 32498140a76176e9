/**
 * A relay profile's own keys (beside the common profile keys): where the
 * upstream is, how to ask it, and which dialect it streams. Validated when
 * PROFILES is read, so a mistake names its field before any run starts;
 * never taken from a client.
 */
import * as z from 'zod/mini';

/** The upstream dialects, one file each in formats/. */
export const RELAY_FORMATS = ['edgestream', 'ai-sdk', 'genie', 'deepsearch', 'text', 'json'] as const;
export type RelayFormatName = (typeof RELAY_FORMATS)[number];

/** The body sent when a profile sets none. */
export const DEFAULT_BODY = { query: '{{query}}', requestId: '{{requestId}}', messages: '{{messages}}' } as const;

/** The placeholders a body template may hold; `{{messages}}` only as a whole string (it becomes an array). */
export const PLACEHOLDERS = ['query', 'requestId', 'messages'] as const;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** RFC 9110 token: a header name. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/** `secret:NAME`: the value comes from env[NAME] at run time (a `wrangler secret`). */
export const SECRET_REF = /^secret:([A-Za-z_][A-Za-z0-9_]{0,127})$/;
/** Headers that carry credentials: only as `secret:NAME` (PROFILES is a plain variable, and is stored with each run). */
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie|x-api-key|api-key)$/i;
/** Headers the relay sets itself, or that fetch owns. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'last-event-id']);
/** A dotted path into each JSON message: `choices.0.delta.content`. */
const FIELD_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;
/** Longest idle timeout a profile may set: an hour, the default MAX_RUN_SECONDS. */
const MAX_IDLE_TIMEOUT_MS = 3_600_000;

const noControl = (value: string) => !/[\r\n\0]/.test(value);

const Headers = z.record(z.string(), z.string({ error: 'header values are strings' })).check(
  z.superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER_NAME.test(name)) ctx.issues.push({ code: 'custom', input: name, path: [name], message: 'is not a valid header name' });
      else if (RESERVED_HEADERS.has(name.toLowerCase()))
        ctx.issues.push({ code: 'custom', input: name, path: [name], message: 'is set by the relay itself' });
      if (value.startsWith('secret:') && !SECRET_REF.test(value)) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          path: [name],
          message: '"secret:NAME" needs a variable name (letters, digits, _)',
        });
      } else if (CREDENTIAL_HEADERS.test(name) && !SECRET_REF.test(value)) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          path: [name],
          message: 'carries credentials: use "secret:NAME" and set NAME as a secret',
        });
      } else if (!noControl(value) || value.length > 8192) {
        ctx.issues.push({ code: 'custom', input: value, path: [name], message: 'must be one line of at most 8192 characters' });
      }
    }
  }),
);

const Body = z.unknown().check(
  z.superRefine((body, ctx) => {
    for (const { path, message } of templateIssues(body, [])) ctx.issues.push({ code: 'custom', input: body, path, message });
  }),
);

export const RelaySettings = z
  .strictObject(
    {
      url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).check(
        // Runs after a failed format check too: only judge what parses.
        z.refine((url) => {
          const parsed = URL.canParse(url) ? new URL(url) : null;
          return !parsed?.username && !parsed?.password;
        }, 'must not contain credentials; send them in headers ("secret:NAME")'),
      ),
      method: z._default(z.enum(['POST', 'GET'], { error: 'must be "POST" or "GET"' }), 'POST'),
      headers: z._default(Headers, {}),
      body: z.optional(Body),
      format: z.enum(RELAY_FORMATS, { error: `is required: one of ${RELAY_FORMATS.join(', ')}` }),
      field: z.optional(
        z.string({ error: 'must be a dotted path' }).check(z.regex(FIELD_PATH, 'must be a dotted path like "choices.0.delta.content"')),
      ),
      idleTimeoutMs: z.optional(
        z
          .int({ error: 'must be an integer' })
          .check(z.gte(1, 'must be at least 1'), z.lte(MAX_IDLE_TIMEOUT_MS, `must be at most ${MAX_IDLE_TIMEOUT_MS}`)),
      ),
      resume: z._default(z.boolean({ error: 'must be true or false' }), true),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `not a profile key of the relay agent: ${issue.keys.join(', ')}`
          : 'a relay profile is an object',
    },
  )
  .check(
    z.superRefine((s, ctx) => {
      const issue = (path: string, message: string) => ctx.issues.push({ code: 'custom', input: s, path: [path], message });
      if (s.format === 'json' && s.field === undefined)
        issue('field', 'is required with format "json": the dotted path to the text in each message');
      if (s.format !== 'json' && s.field !== undefined) issue('field', 'applies only to format "json"');
      if (s.method === 'GET' && s.body !== undefined) issue('body', 'a GET request has no body; use "POST"');
    }),
  );

export type RelaySettings = z.infer<typeof RelaySettings>;

/** Where a body template is wrong: unknown placeholders, `{{messages}}` inside a longer string. */
function templateIssues(value: unknown, path: (string | number)[]): { path: (string | number)[]; message: string }[] {
  if (typeof value === 'string') {
    const issues: { path: (string | number)[]; message: string }[] = [];
    for (const [whole, name] of value.matchAll(PLACEHOLDER)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(name!)) {
        issues.push({ path, message: `unknown placeholder ${whole}; use {{query}}, {{requestId}} or {{messages}}` });
      } else if (name === 'messages' && value.trim() !== whole) {
        issues.push({ path, message: '{{messages}} is an array: use it as the whole string, "{{messages}}"' });
      }
    }
    return issues;
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => templateIssues(item, [...path, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => templateIssues(item, [...path, key]));
  return [];
}

/** What a body template is filled with. */
export interface TemplateValues {
  query: string;
  requestId: string;
  messages: unknown[];
}

/**
 * The body template with its placeholders filled: a string that is exactly
 * a placeholder becomes its value (`{{messages}}` the array); one inside a
 * longer string becomes its text.
 * @example fillTemplate({ q: 'Q: {{query}}', m: '{{messages}}' }, values) // { q: 'Q: hi', m: [...] }
 */
export function fillTemplate(template: unknown, values: TemplateValues): unknown {
  if (typeof template === 'string') {
    const whole = /^\{\{\s*(query|requestId|messages)\s*\}\}$/.exec(template.trim());
    if (whole) return values[whole[1] as keyof TemplateValues];
    return template.replace(PLACEHOLDER, (match, name: string) => (name === 'query' || name === 'requestId' ? values[name] : match));
  }
  if (Array.isArray(template)) return template.map((item) => fillTemplate(item, values));
  if (template && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([key, item]) => [key, fillTemplate(item, values)]));
  }
  return template;
}
