/**
 * What a relay format is: one upstream SSE message in, this contract's
 * events out. Formats are pure (no I/O, no clock), so the same messages
 * always give the same events: after a restart the run drops the events it
 * already holds by counting, which only works if the count is the same.
 */
import type { AgentEvent } from '../../../events';
import { AgentError } from '../../types';
import type { RelaySettings } from '../settings';

/** One SSE message as the upstream sent it. */
export interface UpstreamMessage {
  /** The SSE `id:` of this message, if it had one. */
  id?: string;
  /** The SSE `event:`; absent means `message`. */
  event?: string;
  data: string;
  /** The last message of a body that ended without its blank line: complete as far as the sender cares, or cut off. */
  unterminated?: true;
}

export interface Mapped {
  events: AgentEvent[];
  /** The upstream's last word: nothing after it belongs to the run. */
  final?: true;
}

export interface FormatReader {
  /** The events of one message; throws AgentError when the upstream reports or causes a failure. */
  read(message: UpstreamMessage): Mapped;
  /** The body ended before a final message: the closing events, or an AgentError (`upstream_incomplete`). */
  end(): AgentEvent[];
  /**
   * What the reader has accumulated that a restarted run needs again (the
   * answer so far, when the result is assembled here), or undefined. Goes
   * into the checkpoint's cursor; must be JSON.
   */
  state?(): unknown;
}

export interface RelayFormat {
  name: RelaySettings['format'];
  /** False when the dialect's SSE ids are not positions (DeepSearch sends its request id with every message). */
  idsAreCursors: boolean;
  /**
   * True when the upstream refuses a second start of one requestId unless
   * it carries the first one's `startSecret` (an edgestream deployment,
   * docs/API.md "Attaching"): the relay sends one, and the same one again
   * when it resumes after a restart.
   */
  startSecret?: true;
  /** A reader for one upstream response; `restored` is a `state()` from before a restart. */
  create(settings: RelaySettings, restored?: unknown): FormatReader;
}

/** The message id of an answer whose upstream names none (as the chat agents' `m1`). */
export const MESSAGE_ID = 'm1';

/** An upstream message id worth keeping as ours: a short printable string. */
export function messageIdOf(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x21-\x7e]{1,128}$/.test(value) ? value : undefined;
}

/** Machine codes like `rate_limited`: shown in a message; never free text. */
const SAFE_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** The upstream reported a failure in its stream. Its own text is never shown: it may quote anything. */
export function reportedError(code?: unknown, retryable = true): AgentError {
  const shown = typeof code === 'string' && SAFE_CODE.test(code) ? ` (${code})` : '';
  return new AgentError('upstream_error', `the upstream reported an error mid-stream${shown}`, retryable);
}

export function incomplete(missing: string): AgentError {
  return new AgentError('upstream_incomplete', `the upstream stream ended before ${missing}`, true);
}

/** A message that parses but is not of the dialect: asking again gets the same. */
export function notTheFormat(format: string, what: string): AgentError {
  return new AgentError('upstream_malformed', `the upstream sent ${what}, not ${format}; check the profile's format`, false);
}

/**
 * The message's data as JSON. Not JSON: a broken chunk (retrying may help),
 * or, when the body ended in the middle of it, a cut stream.
 */
export function parseJson(message: UpstreamMessage): unknown {
  try {
    return JSON.parse(message.data);
  } catch {
    if (message.unterminated) throw new AgentError('upstream_incomplete', 'the upstream stream ended in the middle of a message', true);
    throw new AgentError('upstream_malformed', 'the upstream sent a message that is not valid JSON', true);
  }
}

export const isText = (value: unknown): value is string => typeof value === 'string' && value !== '';
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
