/**
 * The part of a conversation a turn's agent gets: as many of the newest
 * messages as fit a budget of characters. Pure, so the chat (its own
 * HISTORY_MAX_CHARS) and the Worker (a profile's `maxInputChars`, which only
 * it knows) apply the same rule.
 */

export interface HistoryMessage {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * Walk from the newest message to the oldest and keep each one that fits in
 * what is left of `maxChars`. One that does not (a long answer, say) is
 * skipped and the walk goes on, so a single long message does not cost the
 * agent all the conversation before it. Messages without text are left out.
 * @returns the kept messages, oldest first
 * @example
 * fitHistory([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'x'.repeat(900) }], 100)
 * // [{ role: 'user', content: 'hi' }]
 */
export function fitHistory(messages: readonly HistoryMessage[], maxChars: number): HistoryMessage[] {
  const kept: HistoryMessage[] = [];
  let left = maxChars;
  for (let i = messages.length - 1; i >= 0 && left > 0; i--) {
    const m = messages[i]!;
    if (m.content === '' || m.content.length > left) continue;
    left -= m.content.length;
    kept.push({ role: m.role, content: m.content });
  }
  return kept.reverse();
}
