/**
 * The contract's JSON errors. Routes throw `ApiError`; `app.onError` turns
 * anything thrown into `{ error: { code, message, issues? } }` and never
 * lets a stack trace or an internal message out.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ConfigError } from './config';

export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_request: 400,
  unknown_agent: 400,
  agent_not_configured: 400,
  invalid_last_event_id: 400,
  unauthorized: 401,
  human_check_failed: 403,
  producer_fenced: 403,
  not_found: 404,
  run_not_found: 404,
  chat_not_found: 404,
  method_not_allowed: 405,
  run_exists: 409,
  run_ended: 409,
  run_not_external: 409,
  producer_seq_gap: 409,
  chat_busy: 409,
  chat_full: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exceeded: 429,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorIssue {
  path: (string | number)[];
  message: string;
}

/** Fields an error adds beside `code` and `message` for a client to act on (e.g. a producer's `expectedSeq`). */
export type ErrorDetails = Record<string, string | number | boolean>;

export class ApiError extends HTTPException {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: ErrorIssue[],
    readonly headers?: Record<string, string>,
    readonly details?: ErrorDetails,
  ) {
    super(ERROR_STATUS[code], { message });
  }
}

export function errorBody(code: ErrorCode, message: string, issues?: ErrorIssue[], details?: ErrorDetails) {
  const error = { code, message, ...details };
  return { error: issues ? { ...error, issues } : error };
}

export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof ApiError) {
    return c.json(errorBody(err.code, err.message, err.issues, err.details), err.status, err.headers);
  }
  if (err instanceof HTTPException) {
    // Hono's own (e.g. from a middleware): map by status to a contract code.
    const code = codeForStatus(err.status);
    return c.json(errorBody(code, err.message || code), ERROR_STATUS[code]);
  }
  if (err instanceof ConfigError) {
    // Safe to log whole: it names the variable to fix, not its value. The
    // caller learns only that retrying will not help; the deployer reads the log.
    console.error(err.message);
    return c.json(errorBody('internal', 'the service is misconfigured; its log names the setting to fix'), 500);
  }
  // Unexpected: log the kind, never the message or stack (they may hold secrets).
  console.error(`internal error: ${(err as Error)?.name ?? typeof err}`);
  return c.json(errorBody('internal', 'internal error; please retry'), 500);
}

function codeForStatus(status: number): ErrorCode {
  const found = (Object.entries(ERROR_STATUS) as [ErrorCode, number][]).find(([, s]) => s === status);
  return found ? found[0] : 'internal';
}
