/**
 * `echo`: the worked example of docs/agents.md, small enough to copy. It
 * answers with the query's words, one `delta` each, `delayMs` apart
 * (`reverse`: last word first). No built-in profile runs it: a deployment
 * exposes it by naming it in PROFILES, e.g.
 * `{"echo": {"agent": "echo", "prefix": "You said:", "clientOptions": ["delayMs"]}}`.
 */
import * as z from 'zod/mini';
import { sleep } from '../../lib/timing';
import { AgentError, type Agent, type AgentContext, type AgentInput } from '../types';

/** What `POST /v1/runs` may put in `options` (a profile's `clientOptions` picks which ones anonymous callers may). */
export const EchoOptions = z.strictObject({
  delayMs: z._default(z.int().check(z.gte(0), z.lte(10_000)), 50),
  reverse: z._default(z.boolean(), false),
});
export type EchoOptions = z.infer<typeof EchoOptions>;

/** The deployer's own profile keys: never from a client. */
export const EchoSettings = z.strictObject({
  /** Said before the echo, as its own delta. */
  prefix: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
});
export type EchoSettings = z.infer<typeof EchoSettings>;

export const echoAgent: Agent<EchoOptions, EchoSettings> = {
  name: 'echo',
  description: 'Echoes the query word by word (the example agent of docs/agents.md).',
  // Cast as demo.ts does: with defaults, what the schema accepts is wider than what it returns.
  options: EchoOptions as z.ZodMiniType<EchoOptions>,
  settings: EchoSettings,
  // Same input, same events: a run cut by a restart is replayed, not failed.
  deterministic: true,
  notConfigured: () => null,
  async *run(input: AgentInput<EchoOptions>, signal: AbortSignal, ctx: AgentContext<EchoSettings>) {
    const words = input.query.split(/\s+/).filter((word) => word !== '');
    if (words.length === 0) {
      // A documented failure: the run ends with this `error`, then `done` failed.
      throw new AgentError('nothing_to_echo', 'the query has no words to echo', false);
    }
    if (input.options.reverse) words.reverse();
    const pieces = ctx.settings?.prefix ? [ctx.settings.prefix, ...words] : words;

    yield { type: 'status', status: 'generating', message: `Echoing ${words.length} words` };
    const messageId = 'm1';
    let text = '';
    for (const [i, word] of pieces.entries()) {
      // After a restart the run already holds `ctx.skip` events (the status is one): replay those without waiting.
      // Otherwise wait, even at 0 ms: a timer lets readers and a cancel have a turn between words.
      if (i + 1 >= ctx.skip) await sleep(input.options.delayMs, signal);
      // Cancel or deadline: stop quietly; the run writes its own `error`/`done`.
      if (signal.aborted) return;
      const piece = i === 0 ? word : ` ${word}`;
      text += piece;
      yield { type: 'delta', messageId, text: piece };
    }
    yield { type: 'result', messageId, text, data: { words: words.length } };
  },
};
