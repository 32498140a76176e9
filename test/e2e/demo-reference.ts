/** The demo agent is deterministic: compute what a run must contain, offline. */
import { DemoOptions, demoScript } from '../../src/agents/demo/demo';

/** The answer's text (with `failAfter`, what was streamed before the failure). */
export function demoText(query: string, options: Record<string, unknown>): string {
  const parsed = DemoOptions.parse(options);
  let text = '';
  try {
    for (const event of demoScript(query, parsed)) if (event.type === 'delta') text += event.text;
  } catch {
    // failAfter: the text streamed before the agent failed.
  }
  return text;
}

/** Events in a completed demo run: run + 6 stage events + deltas + result + done. */
export const demoEventCount = (tokens: number) => 1 + 6 + tokens + 2;
