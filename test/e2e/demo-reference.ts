/** The demo agent is deterministic: compute what a run must contain, offline. */
import { DemoOptions, demoScript } from '../../src/agents/demo';

export function demoText(query: string, options: Record<string, unknown>): string {
  const parsed = DemoOptions.parse(options);
  let text = '';
  for (const event of demoScript(query, parsed)) if (event.type === 'delta') text += event.text;
  return text;
}

/** Events in a completed demo run: run + 6 stage events + deltas + result + done. */
export const demoEventCount = (tokens: number) => 1 + 6 + tokens + 2;
