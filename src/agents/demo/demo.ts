/**
 * The offline, deterministic `demo` agent: plays the stages of a research
 * agent and answers with a true note about edgestream, chosen by the
 * question (demo-notes.ts). Same query and options, same events, so it
 * needs no key and no network, and a run interrupted by a restart can be
 * replayed exactly.
 */
import * as z from 'zod/mini';
import type { AgentEvent } from '../../events';
import { sleep } from '../../lib/timing';
import { answerPieces, noteFor } from './demo-notes';
import { AgentError, type Agent, type AgentContext, type AgentInput } from '../types';

export const DemoOptions = z.strictObject({
  tokens: z._default(z.int().check(z.gte(1), z.lte(100_000)), 60),
  delayMs: z._default(z.int().check(z.gte(0), z.lte(10_000)), 30),
  failAfter: z.optional(z.int().check(z.gte(1))),
});
export type DemoOptions = z.infer<typeof DemoOptions>;

/**
 * With `delayMs: 0` the agent would never yield to the event loop; this many
 * deltas go out between macrotask yields so readers and timers get a turn.
 */
const YIELD_EVERY = 64;

/** The deterministic event script (without timing). */
export function* demoScript(query: string, options: DemoOptions): Generator<AgentEvent> {
  const topic = query.length > 60 ? `${query.slice(0, 57)}...` : query;
  const note = noteFor(query);
  const messageId = 'm1';
  yield { type: 'status', status: 'planning', message: 'Planning the answer' };
  yield {
    type: 'plan',
    steps: [`Understand the question: ${topic}`, 'Find the note about it', 'Write the answer'],
  };
  yield { type: 'status', status: 'searching', message: 'Reading the notes on edgestream' };
  yield { type: 'tool', messageId, name: 'search', phase: 'call', input: { query } };
  yield {
    type: 'tool',
    messageId,
    name: 'search',
    phase: 'result',
    output: { results: [{ title: note.title, score: 0.92 }] },
  };
  yield { type: 'status', status: 'generating', message: 'Writing the answer' };
  let text = '';
  let i = 0;
  for (const piece of answerPieces(query, options.tokens)) {
    if (options.failAfter !== undefined && i === options.failAfter) {
      throw new AgentError('demo_failure', `demo agent failed after ${i} deltas, as asked by failAfter`, false);
    }
    text += piece;
    i++;
    yield { type: 'delta', messageId, text: piece };
  }
  if (options.failAfter !== undefined && options.failAfter >= options.tokens) {
    throw new AgentError('demo_failure', `demo agent failed after ${options.tokens} deltas, as asked by failAfter`, false);
  }
  yield { type: 'result', messageId, text, data: { tokens: options.tokens } };
}

export const demoAgent: Agent<DemoOptions> = {
  name: 'demo',
  description: 'Offline, deterministic: answers questions about edgestream itself (no keys, no network).',
  options: DemoOptions as z.ZodMiniType<DemoOptions>,
  deterministic: true,
  notConfigured: () => null,
  async *run(input: AgentInput<DemoOptions>, signal: AbortSignal, ctx: AgentContext) {
    const { delayMs } = input.options;
    let index = 0;
    let sinceYield = 0;
    for (const event of demoScript(input.query, input.options)) {
      if (signal.aborted) return;
      const replaying = index++ < ctx.skip;
      if (event.type === 'delta' && !replaying) {
        if (delayMs > 0) await sleep(delayMs, signal);
        else if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await sleep(0, signal);
        }
        if (signal.aborted) return;
      }
      yield event;
    }
  },
};
