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
 * Model output is untrusted: the answer is markdown rendered by
 * widget-markdown.ts into elements and text nodes, never HTML; everything
 * else is set as text. Each event is also dispatched on `document` as
 * `edgestream:event`, so a page can show the raw log (the demo page does).
 *
 * Failures say what happened and what to do, in the turn that met them
 * (scrolled into view): a site whose origin the service does not allow
 * (`ALLOWED_ORIGINS`), an offline browser (the answer carries on by itself
 * when the network is back), a connection given up on (Retry; also retried
 * by itself when the browser comes back online or the tab is looked at again).
 */
import { AgentRun, type RunOptions } from './run';
import { clearHandle, loadHandle } from './persist';
import type { ChatMessage, ConnectionState, RunEvent, TerminalState } from './types';
import { humanCheck } from './widget-human';
import { markdownView } from './widget-markdown';
import { PHONE_MAX_PX, WIDGET_CSS } from './widget-style';

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
  /** The answer's markdown view: each delta is written to it. */
  md: ReturnType<typeof markdownView>;
}

/** The server refuses bodies over 64 KiB; stay well under it. */
export const MAX_BODY_BYTES = 48 * 1024;
/**
 * Turns kept in the panel and in storage; the oldest go first. Bounds what a
 * reload replays at once (each turn is one request to the server's log).
 */
export const MAX_TURNS = 20;

const svg = (path: string) =>
  `<svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${path}</svg>`;
const CHAT_ICON = svg('<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>');
const CLOSE_ICON = svg('<path d="M6 6l12 12M18 6L6 18"/>');
const DOWN_ICON = svg('<path d="M12 5v14M6 13l6 6 6-6"/>');

const RUN_LABEL = { completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' } as const;

const STATE_LABEL: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Idle',
  error: 'Stopped',
};
/** The header's word for a client that gave up, by why. */
const ERROR_LABEL: Record<string, string> = {
  origin_not_allowed: 'Not allowed',
  retries_exhausted: 'Disconnected',
  human_check_failed: 'Not confirmed',
};
/** The notice in a turn while the browser is offline (not an error: it resolves itself). */
export const OFFLINE_NOTICE = 'You are offline. The answer will carry on by itself when the connection is back.';

/** Closer to the bottom than this, the message list follows new text; further up, the user is reading. */
const STICK_PX = 40;
/** How long "Copied" shows on a copy button before it says "Copy" again. */
const COPIED_MS = 2_000;

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
  // The launcher opens the panel and, while it is open, closes it (with its own icon and name).
  const launcher = h('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'es-panel' });
  const panel = h('section', { class: 'panel', id: 'es-panel', role: 'dialog', 'aria-labelledby': 'es-title', hidden: '' });
  const header = h('header');
  const heading = h('div', { class: 'heading' });
  const title = h('h2', { id: 'es-title' }, config.title);
  const conn = h('span', { class: 'conn', 'data-state': 'closed' }, STATE_LABEL.closed);
  heading.append(title, conn);
  const clear = h('button', { class: 'icon new', type: 'button' }, 'New chat');
  const close = h('button', { class: 'icon close', type: 'button', 'aria-label': 'Close chat' });
  close.innerHTML = CLOSE_ICON; // a constant of ours, not model text
  header.append(heading, clear, close);
  // Focusable, so a keyboard can scroll it (it holds no other focusable element before the first answer).
  const body = h('div', { class: 'body', role: 'region', 'aria-label': 'Conversation', tabindex: '0' });
  const hint = h('p', { class: 'hint' }, 'Ask anything. Answers stream live and survive reloads.');
  body.append(hint);
  const jump = h('button', { class: 'jump', type: 'button', hidden: '' });
  jump.innerHTML = DOWN_ICON;
  jump.append('Jump to latest');
  const form = h('form');
  const label = h('label', { class: 'sr-only', for: 'es-input' }, 'Your question');
  const input = h('textarea', { id: 'es-input', rows: '2', placeholder: 'Ask a question…', maxlength: '16000' });
  // Send and Stop share one place: while an answer streams, Stop stands where Send was.
  const actions = h('div', { class: 'send' });
  const send = h('button', { class: 'btn', type: 'submit' }, 'Send');
  const stop = h('button', { class: 'btn secondary', type: 'button', hidden: '' }, 'Stop');
  actions.append(send, stop);
  form.append(label, input, actions);
  // Turnstile's widget is light DOM, shown here (widget-human.ts says why).
  const check = h('div', { class: 'check' });
  check.append(h('slot', { name: 'turnstile' }));
  const main = h('div', { class: 'main' });
  main.append(body, jump);
  panel.append(header, main, check, form);
  // Screen readers hear stages, "Answer complete" and errors from here, once each,
  // not every streamed fragment. Outside the panel: still heard while it is closed.
  const live = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true' });
  root.append(style, launcher, panel, live);
  return { launcher, panel, conn, clear, close, body, hint, jump, form, input, send, stop, live };
}

/** The launcher's face: a chat bubble and the title when closed, a close icon (and name) when open. */
function renderLauncher(launcher: HTMLElement, open: boolean, title: string) {
  launcher.innerHTML = open ? CLOSE_ICON : CHAT_ICON; // constants of ours, not model text
  if (open) launcher.setAttribute('aria-label', 'Close chat');
  else {
    launcher.removeAttribute('aria-label');
    launcher.append(h('span', {}, title));
  }
}

function renderTurn(question: string) {
  const turn = h('article', { class: 'turn' });
  // The agent's plan and steps fold into one line: the answer is what matters.
  const work = h('details', { class: 'work' });
  const summary = h('summary', {}, 'Starting…');
  const plan = h('ol', { class: 'plan', 'aria-label': 'Plan' });
  const steps = h('ul', { class: 'steps', 'aria-label': 'Progress' });
  work.append(summary, plan, steps);
  const answer = h('div', { class: 'answer' });
  const tools = h('div', { class: 'tools', hidden: '' });
  const copy = h('button', { class: 'copy', type: 'button', 'aria-label': 'Copy answer' }, 'Copy');
  tools.append(copy);
  const final = h('div', { class: 'final' });
  const notice = h('p', { class: 'notice', hidden: '' });
  const error = h('div', { class: 'error', hidden: '' });
  const errorText = h('span');
  const retry = h('button', { class: 'btn secondary retry', type: 'button' }, 'Retry');
  error.append(errorText, retry);
  turn.append(h('div', { class: 'question' }, question), work, answer, tools, final, notice, error);
  return { turn, work, summary, plan, steps, answer, tools, copy, final, notice, error, errorText, retry };
}

/** What a person reads when the client gave up, by the error's code. */
function errorMessage(e: { code: string; message: string } | undefined): string {
  switch (e?.code) {
    case 'origin_not_allowed':
      return `This site (${location.origin}) is not allowed to use this chat service. The site's owner can fix it: add ${location.origin} to ALLOWED_ORIGINS in the service's settings.`;
    case 'retries_exhausted':
      return 'Lost the connection to the chat service. The answer is kept on the server: Retry to carry on.';
    case 'human_check_failed':
      return `This site needs to confirm you are human: ${e.message}.`;
    default:
      return `${e?.message ?? 'Connection lost'}.`;
  }
}

/** The Clipboard API exists only in secure contexts (https, localhost): elsewhere there is no Copy button. */
const canCopy = () => !!globalThis.navigator?.clipboard;

const ended = (run: AgentRun) => run.state === 'closed' || run.state === 'error';
/** The phone layout (widget-style.ts): the panel fills the screen. */
const isPhone = () => matchMedia(`(max-width: ${PHONE_MAX_PX}px)`).matches;

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
  const atBottom = () => el.body.scrollHeight - el.body.scrollTop - el.body.clientHeight < STICK_PX;
  /** "Jump to latest" shows while the reader is scrolled up from newer text. */
  const syncJump = () => (el.jump.hidden = atBottom());
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
      syncJump();
    });
  };
  /** Bring `node` (an error, a notice) into view without yanking a reader who is far up. */
  const reveal = (node: HTMLElement) => requestAnimationFrame(() => node.scrollIntoView({ block: 'nearest' }));
  const setOpen = (open: boolean, focus = false) => {
    el.panel.hidden = !open;
    el.launcher.setAttribute('aria-expanded', String(open));
    renderLauncher(el.launcher, open, config.title);
    // The phone layout hides the launcher under the full-screen panel; CSS needs to know.
    host.toggleAttribute('data-open', open);
    // Full screen, the panel is all there is: a modal dialog, whose Tab order stays inside (keydown below).
    if (open && isPhone()) el.panel.setAttribute('aria-modal', 'true');
    else el.panel.removeAttribute('aria-modal');
    if (open) {
      toBottom();
      syncJump();
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
    if (message !== null) reveal(t.el.error);
  };
  /** The fold's one line: the current step while working, how it ended after. */
  const summarise = (t: Turn) => {
    const steps = t.el.steps.querySelectorAll('li:not(.tool)');
    const current = steps[steps.length - 1]?.textContent ?? '';
    const run = t.run;
    const outcome = t.state ?? (run?.state === 'error' ? 'interrupted' : undefined);
    t.el.turn.dataset.outcome = outcome ?? 'working';
    // Nothing to unfold before the first step (a run that could not start): the error says it all.
    t.el.work.hidden = !steps.length && !t.el.plan.children.length && !!outcome;
    t.el.summary.textContent =
      outcome === 'completed'
        ? `Done in ${steps.length} steps`
        : outcome
          ? `${outcome === 'cancelled' ? 'Stopped' : outcome === 'failed' ? 'Failed' : 'Interrupted'} at: ${current}`
          : current
            ? `${current}…`
            : 'Starting…';
    // The step that was going on when it ended did not finish: it must not show a check mark.
    const last = steps[steps.length - 1];
    if (last) last.classList.toggle('stopped', !!outcome && outcome !== 'completed');
  };

  /** Bring the header, buttons and hint in line with the turns and the last turn's run. */
  const sync = () => {
    const last = turns.at(-1);
    const run = last?.run;
    const state = last?.pending ? 'connecting' : (run?.state ?? 'closed');
    const offline = state === 'reconnecting' && !!run?.offline;
    el.conn.dataset.state = offline ? 'offline' : state;
    // Once the run has ended, say how, rather than "Idle"; once the client gave up, say why.
    el.conn.textContent = offline
      ? 'Offline'
      : state === 'error'
        ? (ERROR_LABEL[run?.error?.code ?? ''] ?? STATE_LABEL.error)
        : state === 'closed' && run?.runState
          ? RUN_LABEL[run.runState]
          : STATE_LABEL[state];
    const live = !!run && !ended(run);
    // Waiting for the human check counts as busy: one question at a time.
    const busy = live || !!last?.pending;
    // Hiding or disabling the focused button would drop keyboard focus to <body>.
    const focused = root.activeElement;
    if ((focused === el.stop && !live) || (focused === el.send && busy)) el.input.focus();
    el.stop.hidden = !live;
    el.send.hidden = live;
    el.send.disabled = busy;
    el.hint.hidden = turns.length > 0;
    for (const t of turns) {
      const streaming = !!t.run && !ended(t.run);
      t.el.answer.dataset.streaming = String(streaming);
      t.el.answer.setAttribute('aria-busy', String(streaming));
      t.el.tools.hidden = streaming || !t.answer || !canCopy();
      const waiting = !!t.run?.offline && streaming;
      if (waiting !== !t.el.notice.hidden) {
        t.el.notice.hidden = !waiting;
        t.el.notice.textContent = waiting ? OFFLINE_NOTICE : '';
        if (waiting) {
          reveal(t.el.notice);
          if (t === turns.at(-1)) announce(OFFLINE_NOTICE);
        }
      }
      summarise(t);
    }
  };

  const onEvent = (t: Turn, event: RunEvent) => {
    document.dispatchEvent(new CustomEvent('edgestream:event', { detail: event }));
    const loud = event.seq > t.quietUpTo && t === turns.at(-1);
    keepAtBottom();
    const { plan, steps, final } = t.el;
    const unmark = () => steps.querySelector('[aria-current]')?.removeAttribute('aria-current');
    switch (event.type) {
      case 'plan':
        plan.replaceChildren(...event.steps.map((s) => h('li', {}, s)));
        break;
      case 'status':
        unmark();
        steps.append(h('li', { 'aria-current': 'step' }, event.message));
        summarise(t);
        if (loud) announce(event.message);
        break;
      case 'tool':
        steps.append(h('li', { class: 'tool' }, `${event.phase === 'call' ? 'Calling' : 'Result from'} ${event.name}`));
        break;
      case 'delta':
        // markdown into elements and text nodes, never innerHTML: model text is untrusted
        t.md.write(event.text);
        t.answer += event.text;
        break;
      case 'result':
        // Deltas already showed the text; an agent that streams none sends it whole here.
        if (!t.answer) {
          t.answer = event.text;
          t.md.write(event.text);
        }
        t.md.end();
        break;
      case 'error':
        showError(t, event.message);
        if (loud) announce(event.message);
        break;
      case 'done':
        unmark();
        t.md.end();
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
      const message = errorMessage(r.error);
      if (r.error?.code === 'origin_not_allowed') console.error(`edgestream widget: ${message}`);
      showError(t, message);
      sync();
      if (t === turns.at(-1)) announce(message);
    });
  };

  const addTurn = (question: string, saved?: SavedTurn) => {
    const view = renderTurn(question);
    const t: Turn = { question, answer: '', quietUpTo: 0, ...saved, el: view, md: markdownView(view.answer) };
    t.el.retry.addEventListener('click', () => retry(t));
    t.el.copy.addEventListener('click', () => {
      navigator.clipboard.writeText(t.answer).then(
        () => {
          t.el.copy.textContent = 'Copied';
          announce('Answer copied');
          setTimeout(() => (t.el.copy.textContent = 'Copy'), COPIED_MS);
        },
        () => announce('Could not copy the answer'),
      );
    });
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

  /**
   * Back online, or the tab looked at again: carry on every answer whose
   * connection was given up on, without waiting for a click on Retry.
   */
  const resumeLost = () => {
    if (document.visibilityState === 'hidden') return;
    for (const t of turns) if (t.run?.state === 'error' && t.run.error?.code === 'retries_exhausted') retry(t);
  };
  addEventListener('online', resumeLost);
  document.addEventListener('visibilitychange', resumeLost);

  el.body.addEventListener('scroll', syncJump, { passive: true });
  el.jump.addEventListener('click', () => {
    toBottom();
    syncJump();
    el.input.focus();
  });
  el.launcher.addEventListener('click', () => setOpen(el.panel.hidden, true));
  el.close.addEventListener('click', () => setOpen(false, true));
  el.clear.addEventListener('click', newChat);
  root.addEventListener('keydown', (e) => {
    const { key, shiftKey } = e as KeyboardEvent;
    if (key === 'Escape' && !el.panel.hidden) setOpen(false, true);
    if (key !== 'Tab' || !el.panel.hasAttribute('aria-modal')) return;
    const stops = [...el.panel.querySelectorAll<HTMLElement>('button, textarea, summary, a[href], [tabindex="0"]')].filter(
      (n) => !(n as HTMLButtonElement).disabled && n.checkVisibility({ visibilityProperty: true }),
    );
    const edge = shiftKey ? stops[0] : stops.at(-1);
    if (edge && root.activeElement === edge) {
      e.preventDefault();
      (shiftKey ? stops.at(-1) : stops[0])!.focus();
    }
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
  renderLauncher(el.launcher, false, config.title);
  document.body.append(host);
  // On a phone the open panel covers the whole page: data-open waits for a tap there. A
  // conversation in progress (a reload mid-chat) still opens where it was.
  if ((config.open && !isPhone()) || turns.length) setOpen(true);
  return { host, ask, newChat, open: () => setOpen(true, true), close: () => setOpen(false, true) };
}
