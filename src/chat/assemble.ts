/**
 * A finished turn's answer, from its run's events: the text its deltas
 * carried (or its `result`'s, for an agent that does not stream) and how the
 * run ended. Pure; the chat stores what this returns.
 */
import type { RunError, RunEvent, TerminalState } from '../events';

/**
 * Characters of one stored answer at most: a DO's SQLite row holds 2 MB,
 * and a chat's history is for reading back, not an archive of every token.
 * The run's own log keeps the whole answer until its TTL.
 */
export const MAX_ANSWER_CHARS = 200_000;

export interface Answer {
  text: string;
  state: TerminalState;
  error?: RunError;
  /** The text was cut at MAX_ANSWER_CHARS. */
  truncated?: true;
}

/** Folds a run's events, in seq order, into its answer. */
export class AnswerBuilder {
  #deltas = '';
  #result: string | null = null;
  #state: TerminalState | null = null;
  #error: RunError | undefined;

  add(event: RunEvent): void {
    if (event.type === 'delta') {
      // Stop collecting past the cap; the answer keeps its first part.
      if (this.#deltas.length <= MAX_ANSWER_CHARS) this.#deltas += event.text;
    } else if (event.type === 'result') this.#result = event.text;
    else if (event.type === 'error') this.#error = { code: event.code, message: event.message, retryable: event.retryable };
    else if (event.type === 'done') this.#state = event.state;
  }

  /** The answer; `ended` says how a run that sent no `done` ended (its log is gone, say). */
  answer(ended?: { state: TerminalState; error?: RunError }): Answer {
    const full = this.#deltas !== '' ? this.#deltas : (this.#result ?? '');
    const answer: Answer = { text: full.slice(0, MAX_ANSWER_CHARS), state: this.#state ?? ended?.state ?? 'failed' };
    const error = this.#state ? this.#error : (ended?.error ?? this.#error);
    if (error) answer.error = error;
    if (full.length > MAX_ANSWER_CHARS) answer.truncated = true;
    return answer;
  }
}
