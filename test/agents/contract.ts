/**
 * What every agent owes a run, whatever produces its text. The same suite
 * runs against `demo` and `openai` (against the fake upstream).
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/events';
import type { Agent, AgentInput } from '../../src/agents/types';

export interface ContractSetup {
  agent: Agent<any>;
  env: Record<string, unknown>;
  /** Input for a run that completes normally. */
  input: AgentInput<any>;
  /** Input for a run long enough to be cancelled in the middle. */
  longInput: AgentInput<any>;
}

export async function collect(agent: Agent<any>, input: AgentInput<any>, env: object, signal = new AbortController().signal) {
  const events: AgentEvent[] = [];
  for await (const e of agent.run(input, signal, { env: env as never, skip: 0 })) if (e.type !== 'checkpoint') events.push(e);
  return events;
}

const KNOWN = new Set(['status', 'plan', 'delta', 'tool', 'result']);

export function agentContractTests(name: string, setup: () => ContractSetup) {
  describe(`agent contract: ${name}`, () => {
    it('yields only agent event types, with their fields', async () => {
      const { agent, input, env } = setup();
      const events = await collect(agent, input, env);
      for (const e of events) {
        expect(KNOWN.has(e.type)).toBe(true);
        if (e.type === 'delta') {
          expect(typeof e.messageId).toBe('string');
          expect(typeof e.text).toBe('string');
          expect(e.text.length).toBeGreaterThan(0);
        }
        if (e.type === 'status') expect(typeof e.message).toBe('string');
      }
    });

    it('streams the answer as deltas and ends with one result holding the whole text', async () => {
      const { agent, input, env } = setup();
      const events = await collect(agent, input, env);
      const deltas = events.filter((e) => e.type === 'delta');
      expect(deltas.length).toBeGreaterThan(0);
      const results = events.filter((e) => e.type === 'result');
      expect(results).toHaveLength(1);
      expect(events.at(-1)!.type).toBe('result');
      expect((results[0] as { text: string }).text).toBe(deltas.map((d) => (d as { text: string }).text).join(''));
    });

    it('gives the same text for the same input and the same upstream', async () => {
      const { agent, input, env } = setup();
      const text = async () =>
        (await collect(agent, input, env))
          .filter((e) => e.type === 'delta')
          .map((e) => (e as { text: string }).text)
          .join('');
      expect(await text()).toBe(await text());
    });

    it('stops promptly and quietly when its signal aborts mid-answer', async () => {
      const { agent, longInput, env } = setup();
      const abort = new AbortController();
      const events: AgentEvent[] = [];
      const started = Date.now();
      for await (const e of agent.run(longInput, abort.signal, { env: env as never, skip: 0 })) {
        if (e.type === 'checkpoint') continue;
        events.push(e);
        if (events.filter((x) => x.type === 'delta').length === 3) abort.abort();
      }
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(events.filter((e) => e.type === 'delta').length).toBeLessThanOrEqual(4);
      expect(events.some((e) => e.type === 'result')).toBe(false);
    });
  });
}
