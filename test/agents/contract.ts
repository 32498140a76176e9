/**
 * What every agent owes a run, whatever produces its text. The same suite
 * runs against `demo`, `echo`, the model agents (against fake upstreams)
 * and each relay format.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/events';
import type { Agent, AgentContext, AgentInput } from '../../src/agents/types';

export interface ContractSetup {
  agent: Agent<any>;
  env: Record<string, unknown>;
  /** Input for a run that completes normally. */
  input: AgentInput<any>;
  /** Input for a run long enough to be cancelled in the middle. */
  longInput: AgentInput<any>;
  /** What a profile's own keys give the agent as `ctx.settings` (parsed by its `settings` schema), for `input`. */
  settings?: Record<string, unknown>;
  /** `ctx.settings` for `longInput`; `settings` when absent. */
  longSettings?: Record<string, unknown>;
}

/** What a run's context holds besides `env`: `skip` 0 unless given. */
export interface RunContext {
  settings?: Record<string, unknown>;
  skip?: number;
}

export async function collect(
  agent: Agent<any>,
  input: AgentInput<any>,
  env: object,
  signal = new AbortController().signal,
  ctx: RunContext = {},
) {
  const events: AgentEvent[] = [];
  for await (const e of agent.run(input, signal, contextOf(env, ctx))) if (e.type !== 'checkpoint') events.push(e);
  return events;
}

function contextOf(env: object, { settings, skip = 0 }: RunContext): AgentContext<any> {
  return settings === undefined ? { env: env as never, skip } : { env: env as never, skip, settings };
}

const KNOWN = new Set(['status', 'plan', 'delta', 'tool', 'result']);

export function agentContractTests(name: string, setup: () => ContractSetup) {
  describe(`agent contract: ${name}`, () => {
    it('yields only agent event types, with their fields', async () => {
      const { agent, input, env, settings } = setup();
      const events = await collect(agent, input, env, undefined, { settings });
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
      const { agent, input, env, settings } = setup();
      const events = await collect(agent, input, env, undefined, { settings });
      const deltas = events.filter((e) => e.type === 'delta');
      expect(deltas.length).toBeGreaterThan(0);
      const results = events.filter((e) => e.type === 'result');
      expect(results).toHaveLength(1);
      expect(events.at(-1)!.type).toBe('result');
      expect((results[0] as { text: string }).text).toBe(deltas.map((d) => (d as { text: string }).text).join(''));
    });

    it('gives the same text for the same input and the same upstream', async () => {
      const { agent, input, env, settings } = setup();
      const text = async () =>
        (await collect(agent, input, env, undefined, { settings }))
          .filter((e) => e.type === 'delta')
          .map((e) => (e as { text: string }).text)
          .join('');
      expect(await text()).toBe(await text());
    });

    it('stops promptly and quietly when its signal aborts mid-answer', async () => {
      const { agent, longInput, env, settings, longSettings } = setup();
      const abort = new AbortController();
      const events: AgentEvent[] = [];
      const started = Date.now();
      for await (const e of agent.run(longInput, abort.signal, contextOf(env, { settings: longSettings ?? settings }))) {
        if (e.type === 'checkpoint') continue;
        events.push(e);
        if (events.filter((x) => x.type === 'delta').length === 3) abort.abort();
      }
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(events.filter((e) => e.type === 'delta').length).toBeLessThanOrEqual(4);
      expect(events.some((e) => e.type === 'result')).toBe(false);
    });

    it('deterministic: replayed with ctx.skip = k after a restart, yields the same events (the run drops the first k)', async (t) => {
      const { agent, input, env, settings } = setup();
      if (!agent.deterministic) t.skip();
      const all = await collect(agent, input, env, undefined, { settings });
      for (const skip of new Set([1, Math.floor(all.length / 2), all.length - 1])) {
        const replay = await collect(agent, input, env, undefined, { settings, skip });
        expect(replay, `skip ${skip}`).toHaveLength(all.length);
        expect(replay.slice(skip), `skip ${skip}`).toEqual(all.slice(skip));
      }
    });
  });
}
