/**
 * What the `demo` agent knows: short, true notes about edgestream, in
 * markdown, one per topic. The agent answers with the note whose keywords
 * the question mentions (the overview when none), so a visitor of the demo
 * page learns something real about the service from it.
 *
 * Keep every statement true of the code: these notes are the product's
 * first explanation of itself.
 */
export interface DemoNote {
  /** Shown as the search result's title. */
  title: string;
  /** Lower-case stems; the first note with one of them in the question answers it. */
  keywords: string[];
  text: string;
}

export const DEMO_NOTES: DemoNote[] = [
  {
    title: 'How an answer survives a dropped connection',
    keywords: ['resum', 'drop', 'reload', 'reconnect', 'offline', 'lost', 'network', 'surviv', 'restart', 'refresh', 'tunnel', 'alive'],
    text: `**An answer here outlives its connection.** Every event of a run is written to the run's own log, in SQLite inside a Durable Object, with a gap-free sequence number, *before* any reader sees it.

When the connection drops, the agent does not notice: it keeps appending to the log. The reader reconnects with \`Last-Event-ID\` set to the last number it saw and gets exactly the events after it, then follows live. Nothing is lost, doubled or reordered.

- The widget keeps the run's id and token in \`sessionStorage\`, so a reload replays the answer from the log and carries on.
- Offline, it waits for the network and resumes by itself.
- A restart of the runtime resumes this demo where its log ended.`,
  },
  {
    title: 'Putting this chat on your site',
    keywords: ['embed', 'widget', 'site', 'page', 'script', 'cors', 'origin', 'install', 'html', 'snippet'],
    text: `**One script tag puts this chat on any page:** \`<script src="https://YOUR-HOST/widget.js" async></script>\`.

The service must allow your site's origin: add it to \`ALLOWED_ORIGINS\` (comma-separated) in \`wrangler.toml\` or \`.dev.vars\`. Without it, the widget says that this origin is not allowed instead of trying forever.

- It lives in a shadow root: your CSS does not leak in, and its CSS does not leak out.
- Options are \`data-*\` attributes: \`data-title\`, \`data-theme\`, \`data-agent\`, \`data-position\`.
- Model text is rendered as safe markdown; raw HTML is shown as text.`,
  },
  {
    title: 'What resumability costs',
    keywords: ['cost', 'fast', 'speed', 'latency', 'bench', 'price', 'perform', 'slow', 'sqlite', 'storage', 'overhead'],
    text: `**The price is one Durable Object hop and some SQLite writes.** Events produced in the same event-loop turn share one row, so a fast stream writes few rows; a reader waits at most one turn for an event.

\`npm run bench\` measures the service against a bare Worker streaming the same events with no storage, in the same run, and reports ratios: time to first event, throughput of one stream and of 200 at once, rows per 1,000 deltas.

Model agents merge text over a 16 ms window, one display frame, before it reaches the log.`,
  },
  {
    title: 'Which agents can answer',
    keywords: ['model', 'openai', 'claude', 'anthropic', 'llm', 'gpt', 'ollama', 'backend', 'agent'],
    text: `**A request names a profile, and the deployer decides what each one runs.** Built in: this offline \`demo\`, \`openai\` (any OpenAI-compatible API: OpenAI, Ollama, llama.cpp, vLLM), \`anthropic\` and \`workers-ai\`.

- \`relay\` streams from a backend of yours and makes its output resumable.
- \`external\` runs no agent: your backend appends the events over HTTP, idempotently.
- Your own agent is an async generator of events; the run stores, numbers and replays them.`,
  },
  {
    title: 'Running it in public',
    keywords: ['secur', 'safe', 'abuse', 'limit', 'key', 'token', 'public', 'budget', 'attack', 'spam'],
    text: `**A widget on a public page cannot keep a secret, so the server decides what runs.** Profiles fix the model, the system prompt, the output cap and the deadline.

- Anonymous callers get rate limits and daily budgets per address and per deployment.
- A profile can ask for a start ticket from your backend or a Turnstile token.
- Run tokens are stored only as hashes, and compared in constant time.`,
  },
  {
    title: 'What edgestream is',
    keywords: [],
    text: `**edgestream streams an AI agent's answer to people, and keeps it.** It runs on Cloudflare Workers: each run is a Durable Object that stores every event in order, and readers follow it over Server-Sent Events.

Drop the connection, reload the page or restart the runtime: the reader comes back with \`Last-Event-ID\` and gets exactly what it missed. The run goes on while nobody listens.

Ask me how an answer survives a dropped connection, how to embed this chat on your site, what it costs, or which agents can answer.`,
  },
];

/** The note for a question: the first whose keyword it mentions, else the overview (the last). */
export function noteFor(query: string): DemoNote {
  const q = query.toLowerCase();
  return DEMO_NOTES.find((n) => n.keywords.some((k) => q.includes(k))) ?? DEMO_NOTES[DEMO_NOTES.length - 1]!;
}

/**
 * The answer as exactly `count` delta pieces, ending where a note ends: the
 * note for the question, followed by the other notes (after a blank line
 * each) only when `count` is more than its characters. Split into `count`
 * even runs of words when there are enough words, else of characters, so
 * any `count` gives whole sentences (a short answer streams in bigger pieces).
 */
export function answerPieces(query: string, count: number): string[] {
  const first = noteFor(query);
  const order = [first, ...DEMO_NOTES.filter((n) => n !== first)];
  let text = first.text;
  for (let i = 1; text.length < count; i++) text += `\n\n${order[i % order.length]!.text}`;
  // Words keep the whitespace before them ("word", " word", "\n\nword"), so the markdown survives.
  const words = text.split(/(?<=\S)(?=\s)/);
  const units = words.length >= count ? words : Array.from(text);
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    pieces.push(units.slice(Math.floor((i * units.length) / count), Math.floor(((i + 1) * units.length) / count)).join(''));
  }
  return pieces;
}
