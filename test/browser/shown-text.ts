/**
 * What the widget shows of an answer: the text content of its rendered
 * markdown (no `**`, no list markers, no blank lines between paragraphs),
 * computed offline with the widget's own parser (src/client/widget-markdown.ts).
 * A browser test comparing the page's text with this finds any delta lost,
 * doubled or misplaced on the way.
 */
import { DemoOptions, demoScript } from '../../src/agents/demo/demo';
import { parseMarkdown, textOf } from '../../src/client/widget-markdown';

export const renderedText = (pieces: Iterable<string>): string => textOf(parseMarkdown([...pieces].join('')));

/** The demo's answer to `query`, as the widget shows it. */
export function shownDemoText(query: string, options: Record<string, unknown>): string {
  const deltas: string[] = [];
  for (const event of demoScript(query, DemoOptions.parse(options))) if (event.type === 'delta') deltas.push(event.text);
  return renderedText(deltas);
}
