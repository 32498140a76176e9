/**
 * The embeddable chat widget: one `<script>` tag adds a launcher and a chat
 * panel inside a shadow DOM.
 *
 *   <script src="https://HOST/widget.js" data-endpoint="https://HOST" async></script>
 *
 * Options (data attributes): data-endpoint (default: the script's origin),
 * data-agent, data-options (JSON), data-title, data-position (bottom-right | bottom-left),
 * data-theme (light | dark | auto), data-open ("true" opens on load),
 * data-ticket-url (the site's start-ticket endpoint), data-turnstile-sitekey
 * (see widget-human.ts for both: the human check of a public agent).
 *
 * A conversation: every question is a turn (question, plan, steps, answer,
 * final state); earlier completed turns go to the agent as `messages`. The
 * turns' run handles are kept in sessionStorage, and a reload replays each
 * turn from the server's log (the unfinished last one then follows live).
 *
 * Model output is untrusted: it is only ever set as text, never as HTML.
 * Each event is also dispatched on `document` as `edgestream:event`, so a
 * page can show the raw log (the demo page does).
 */
import { AgentRun, type RunOptions } from './run';
import { clearHandle, loadHandle } from './persist';
import type { ChatMessage, ConnectionState, RunEvent, TerminalState } from './types';
import { humanCheck } from './widget-human';
import { WIDGET_CSS } from './widget-style';

interface WidgetConfig {
  endpoint: string;
  agent: string | undefined;
  /** Agent options as JSON, e.g. data-options='{"temperature":0.2}'. */
  options: Record<string, unknown> | undefined;
  title: string;
  position: 'bottom-right' | 'bottom-left';
  theme: 'light' | 'dark' | 'auto';
  open: boolean;
  /** Where to POST for a start ticket before each start (widget-human.ts has the contract). */
  ticketUrl: string | undefined;
  /** Use Turnstile with this site key, whatever /v1/agents says. */
  turnstileSiteKey: string | undefined;
}

/** What a reload needs to replay one turn from the server's log. */
interface SavedTurn {
  question: string;
  requestId: string;
  token: string;
}

/** What `history` needs of a turn. */
export interface PastTurn {
  question: string;
  /** The answer's text so far. */
  answer: string;
  /** The run's terminal state once its `done` arrived. */
  state?: TerminalState;
}

/** One question and everything its run showed. */
interface Turn extends PastTurn {
  requestId?: string;
  token?: string;
  /** The run this turn follows; callbacks of any other run are stale. */
  run?: AgentRun;
  /** Waiting for the human check's evidence; no run yet. */
  pending?: boolean;
  /** Events up to this seq were seen before a reload: replay them without announcing them again. */
  quietUpTo: number;
  el: ReturnType<typeof renderTurn>;
}

/** The server refuses bodies over 64 KiB; stay well under it. */
export const MAX_BODY_BYTES = 48 * 1024;
/**
 * Turns kept in the panel and in storage; the oldest go first. Bounds what a
 * reload replays at once (each turn is one request to the server's log).
 */
export const MAX_TURNS = 20;

const CHAT_ICON =
  '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg>';

const RUN_LABEL = { completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' } as const;

const STATE_LABEL: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Idle',
  error: 'Offline',
};

/** Closer to the bottom than this, the message list follows new text; further up, the user is reading. */
const STICK_PX = 40;

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;

/**
 * Earlier turns as chat `messages`: only completed turns with an answer, the
 * newest kept first, and no more than `budget` bytes of JSON (older turns are
 * dropped first, so the request body stays under the server's limit).
 */
export function history(turns: PastTurn[], budget: number): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i]!;
    if (t.state !== 'completed' || !t.answer) continue;
    const pair: ChatMessage[] = [
      { role: 'user', content: t.question },
      { role: 'assistant', content: t.answer },
    ];
    budget -= bytes(pair);
    if (budget < 0) break;
    messages.unshift(...pair);
  }
  return messages;
}

function readConfig(script: HTMLScriptElement | null): WidgetConfig {
  const data = script?.dataset ?? {};
  const origin = script?.src ? new URL(script.src, location.href).origin : location.origin;
  return {
    endpoint: data.endpoint || origin,
    agent: data.agent || undefined,
    options: parseOptions(data.options),
    title: data.title || 'Ask the agent',
    position: data.position === 'bottom-left' ? 'bottom-left' : 'bottom-right',
    theme: data.theme === 'dark' || data.theme === 'auto' ? data.theme : 'light',
    open: data.open === 'true',
    ticketUrl: data.ticketUrl || undefined,
    turnstileSiteKey: data.turnstileSitekey || undefined,
  };
}

function parseOptions(raw: string | undefined): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    console.warn('edgestream widget: data-options is not a JSON object; ignored');
    return undefined;
  }
}

function loadTurns(key: string): SavedTurn[] {
  try {
    const list = JSON.parse(sessionStorage.getItem(key) ?? '[]') as SavedTurn[];
    return Array.isArray(list) ? list.filter((t) => [t?.question, t?.requestId, t?.token].every((v) => typeof v === 'string')) : [];
  } catch {
    return []; // blocked storage or a value we did not write
  }
}

const h = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = '') => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
};

/** Build the DOM once; the returned references are the parts that change. */
function render(root: ShadowRoot, config: WidgetConfig) {
  const style = h('style');
  style.textContent = WIDGET_CSS;
  const launcher = h('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'es-panel' });
  // An inline icon, not an emoji: emoji fonts are missing on many systems.
  launcher.innerHTML = CHAT_ICON; // a constant of ours, not model text
  launcher.append(config.title);
  const panel = h('section', { class: 'panel', id: 'es-panel', role: 'dialog', 'aria-label': config.title, hidden: '' });
  const header = h('header');
  const title = h('h2', {}, config.title);
  const conn = h('span', { class: 'conn', 'data-state': 'closed' }, STATE_LABEL.closed);
  const clear = h('button', { class: 'icon new', type: 'button' }, 'New chat');
  const close = h('button', { class: 'icon', type: 'button', 'aria-label': 'Close chat' }, '×');
  header.append(title, conn, clear, close);
  const body = h('div', { class: 'body' });
  const hint = h('p', { class: 'hint' }, 'Ask anything. Answers stream live and survive reloads.');
  body.append(hint);
  const form = h('form');
  const label = h('label', { class: 'sr-only', for: 'es-input' }, 'Your question');
  const input = h('textarea', { id: 'es-input', rows: '2', placeholder: 'Ask a question…', maxlength: '16000' });
  const send = h('button', { class: 'btn', type: 'submit' }, 'Send');
  const stop = h('button', { class: 'btn secondary', type: 'button', hidden: '' }, 'Stop');
  form.append(label, input, send, stop);
  // Turnstile's widget is light DOM, shown here (widget-human.ts says why).
  const check = h('div', { class: 'check' });
  check.append(h('slot', { name: 'turnstile' }));
  panel.append(header, body, check, form);
  // Screen readers hear stages, "Answer complete" and errors from here, once each,
  // not every streamed fragment. Outside the panel: still heard while it is closed.
  const live = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true' });
  root.append(style, launcher, panel, live);
  return { launcher, panel, conn, clear, close, body, hint, form, input, send, stop, live };
}

function renderTurn(question: string) {
  const turn = h('article', { class: 'turn' });
  const plan = h('ol', { class: 'plan', 'aria-label': 'Plan' });
  const steps = h('ul', { class: 'steps', 'aria-label': 'Progress' });
  const answer = h('div', { class: 'answer' });
  const final = h('div', { class: 'final' });
  const error = h('div', { class: 'error', hidden: '' });
  const errorText = h('span');
  const retry = h('button', { class: 'btn secondary retry', type: 'button' }, 'Retry');
  error.append(errorText, retry);
  turn.append(h('div', { class: 'question' }, question), plan, steps, answer, final, error);
  return { turn, plan, steps, answer, final, error, errorText, retry };
}

const ended = (run: AgentRun) => run.state === 'closed' || run.state === 'error';

export function mountWidget(script: HTMLScriptElement | null = document.currentScript as HTMLScriptElement | null) {
  const config = readConfig(script);
  const host = document.createElement('edgestream-widget');
  host.dataset.position = config.position;
  host.dataset.theme = config.theme;
  const root = host.attachShadow({ mode: 'open' });
  const el = render(root, config);
  /** The live turn's run handle (AgentRun keeps it until `done`). */
  const persistKey = `edgestream-widget:${config.endpoint}`;
  const turnsKey = `${persistKey}:turns`;
  const turns: Turn[] = [];
  const human = humanCheck(config, host);
  let scrollQueued = false;

  const toBottom = () => (el.body.scrollTop = el.body.scrollHeight);
  /**
   * Call before adding content: follow it down only if the reader is at the
   * bottom now (someone who scrolled up is reading). Measured and scrolled
   * once per frame, not per event, so a fast stream forces few layouts.
   */
  const keepAtBottom = () => {
    if (scrollQueued) return;
    const b = el.body;
    const top = b.scrollTop;
    const atBottom = b.scrollHeight - top - b.clientHeight < STICK_PX;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      // ...unless the reader scrolled up in the meantime.
      if (atBottom && b.scrollTop >= top) toBottom();
    });
  };
  const setOpen = (open: boolean, focus = false) => {
    el.panel.hidden = !open;
    el.launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      toBottom();
      human.prepare();
    }
    // Focus moves only when the user asked for it, never on page load.
    if (focus) (open ? el.input : el.launcher).focus();
  };
  const announce = (message: string) => (el.live.textContent = message);
  const save = () => {
    const list: SavedTurn[] = turns
      .filter((t) => t.token)
      .map(({ question, requestId, token }) => ({ question, requestId: requestId!, token: token! }));
    try {
      sessionStorage.setItem(turnsKey, JSON.stringify(list));
    } catch {
      // storage blocked: the chat still works, it just won't survive a reload
    }
  };
  const showError = (t: Turn, message: string | null) => {
    t.el.error.hidden = message === null;
    t.el.errorText.textContent = message ?? '';
  };

  /** Bring the header, buttons and hint in line with the turns and the last turn's run. */
  const sync = () => {
    const last = turns.at(-1);
    const run = last?.run;
    const state = last?.pending ? 'connecting' : (run?.state ?? 'closed');
    el.conn.dataset.state = state;
    // Once the run has ended, say how, rather than "Idle".
    el.conn.textContent = state === 'closed' && run?.runState ? RUN_LABEL[run.runState] : STATE_LABEL[state];
    const live = !!run && !ended(run);
    // Waiting for the human check counts as busy: one question at a time.
    const busy = live || !!last?.pending;
    // Hiding or disabling the focused button would drop keyboard focus to <body>.
    const focused = root.activeElement;
    if ((focused === el.stop && !live) || (focused === el.send && busy)) el.input.focus();
    el.stop.hidden = !live;
    el.send.disabled = busy;
    el.hint.hidden = turns.length > 0;
    for (const t of turns) {
      const streaming = String(!!t.run && !ended(t.run));
      t.el.answer.dataset.streaming = streaming;
      t.el.answer.setAttribute('aria-busy', streaming);
    }
  };

  const onEvent = (t: Turn, event: RunEvent) => {
    document.dispatchEvent(new CustomEvent('edgestream:event', { detail: event }));
    const loud = event.seq > t.quietUpTo && t === turns.at(-1);
    keepAtBottom();
    const { plan, steps, answer, final } = t.el;
    const unmark = () => steps.querySelector('[aria-current]')?.removeAttribute('aria-current');
    switch (event.type) {
      case 'plan':
        plan.replaceChildren(...event.steps.map((s) => h('li', {}, s)));
        break;
      case 'status':
        unmark();
        steps.append(h('li', { 'aria-current': 'step' }, event.message));
        if (loud) announce(event.message);
        break;
      case 'tool':
        steps.append(h('li', { class: 'tool' }, `${event.phase === 'call' ? 'Calling' : 'Result from'} ${event.name}`));
        break;
      case 'delta':
        // append, never innerHTML: model text is untrusted
        answer.append(event.text);
        t.answer += event.text;
        break;
      case 'result':
        // Deltas already showed the text; an agent that streams none sends it whole here.
        if (!t.answer) answer.textContent = t.answer = event.text;
        break;
      case 'error':
        showError(t, event.message);
        if (loud) announce(event.message);
        break;
      case 'done':
        unmark();
        t.state = event.state;
        final.textContent = event.state === 'completed' ? '' : `Run ${event.state}.`;
        // A failed run's error was announced already.
        if (loud && event.state !== 'failed') announce(event.state === 'completed' ? 'Answer complete' : `Run ${event.state}.`);
        break;
    }
  };

  const attach = (t: Turn, opts: Partial<RunOptions>) => {
    t.run?.disconnect();
    // Only the run this turn follows, in a turn still shown, may touch the page:
    // a late callback of an abandoned run must not show "Idle" over a new one.
    const mine = () => t.run === run && turns.includes(t);
    const run: AgentRun = new AgentRun({
      endpoint: config.endpoint,
      ...opts,
      onEvent: (e) => mine() && onEvent(t, e),
      onState: (_, r) => {
        if (!mine()) return;
        if (!t.token && r.token) {
          // Identified: from now on a reload can replay this turn.
          Object.assign(t, { requestId: r.requestId, token: r.token });
          save();
        }
        sync();
      },
    });
    t.run = run;
    sync();
    void run.finished.then((r) => {
      if (!mine() || r.state !== 'error') return;
      // A run the server no longer has (expired, or never ours) is dropped quietly.
      if (r.error?.code === 'run_not_found') return drop(t);
      const e = r.error;
      const message =
        e?.code === 'human_check_failed'
          ? `This site needs to confirm you are human: ${e.message}.`
          : `${e?.message ?? 'Connection lost'}.`;
      showError(t, message);
      if (t === turns.at(-1)) announce(message);
    });
  };

  const addTurn = (question: string, saved?: SavedTurn) => {
    const t: Turn = { question, answer: '', quietUpTo: 0, ...saved, el: renderTurn(question) };
    t.el.retry.addEventListener('click', () => retry(t));
    turns.push(t);
    el.body.append(t.el.turn);
    return t;
  };

  const drop = (t: Turn) => {
    t.run?.disconnect();
    t.el.turn.remove();
    turns.splice(turns.indexOf(t), 1);
    save();
    sync();
  };

  const ask = (q: string) => {
    const query = q.trim();
    if (!query || el.send.disabled) return; // one answer at a time
    const messages = history(turns, MAX_BODY_BYTES - bytes({ query, agent: config.agent, options: config.options }) - 200);
    el.input.value = '';
    while (turns.length >= MAX_TURNS) drop(turns[0]!);
    const t = addTurn(query);
    t.pending = true;
    sync();
    toBottom(); // asking means wanting to see the answer
    // A fresh ticket/token for every start (Retry included); a turn dropped meanwhile starts nothing.
    human.evidence().then(
      (evidence) => {
        t.pending = false;
        if (turns.includes(t)) attach(t, { query, agent: config.agent, options: config.options, messages, persistKey, ...evidence });
      },
      (err: Error) => {
        t.pending = false;
        if (!turns.includes(t)) return;
        showError(t, err.message);
        announce(err.message);
        sync();
      },
    );
  };

  const retry = (t: Turn) => {
    const run = t.run;
    const e = run?.error;
    // A lost connection resumes the same run; a run that failed, or that the server refused, is asked again.
    if (run?.state === 'error' && run.handle && (e?.code === 'retries_exhausted' || !e?.status || e.status >= 500)) {
      showError(t, null);
      attach(t, { resume: run.handle, persistKey });
    } else {
      drop(t);
      ask(t.question);
    }
  };

  const newChat = () => {
    const run = turns.at(-1)?.run;
    // Nobody can see this answer any more (its token is forgotten): stop paying for it.
    if (run && !ended(run)) void run.cancel().catch(() => {});
    for (const t of turns.splice(0)) {
      t.run?.disconnect();
      t.el.turn.remove();
    }
    clearHandle(persistKey);
    save();
    sync();
  };

  el.launcher.addEventListener('click', () => setOpen(el.panel.hidden, true));
  el.close.addEventListener('click', () => setOpen(false, true));
  el.clear.addEventListener('click', newChat);
  root.addEventListener('keydown', (e) => {
    const key = (e as KeyboardEvent).key;
    if (key === 'Escape' && !el.panel.hidden) setOpen(false, true);
  });
  el.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      el.form.requestSubmit();
    }
  });
  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    ask(el.input.value);
  });
  el.stop.addEventListener('click', () => {
    const t = turns.at(-1);
    void t?.run?.cancel().catch(() => showError(t, 'Could not stop the run.'));
  });

  // After a reload: replay every turn from its first event. The turn that was
  // still streaming (its handle is under persistKey) keeps that key and goes on live.
  const live = loadHandle(persistKey);
  for (const saved of loadTurns(turnsKey).slice(-MAX_TURNS)) {
    const isLive = live?.requestId === saved.requestId;
    const t = addTurn(saved.question, saved);
    t.quietUpTo = isLive ? live!.lastEventId : Infinity;
    attach(t, { resume: { requestId: saved.requestId, token: saved.token, lastEventId: 0 }, persistKey: isLive ? persistKey : undefined });
  }
  sync();
  document.body.append(host);
  if (config.open || turns.length) setOpen(true);
  return { host, ask, newChat, open: () => setOpen(true, true), close: () => setOpen(false, true) };
}
