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
 * A conversation is a chat the server keeps (`Chat`, ./chat.ts): the browser
 * keeps only the chat's `{chatId, token}`, in localStorage under a key per
 * endpoint and agent, so a reload, another tab of the site or another device
 * with the same credential shows the same conversation. On load the widget
 * reads it from the server (`GET .../messages`) and follows a turn still
 * running from its first event. "New chat" forgets the handle (and stops a
 * running turn); the server deletes a chat RUN_TTL_SECONDS after its last turn.
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
import { Chat, ChatError, type ChatView, type TurnOptions } from './chat';
import { AgentRun, originRefused } from './run';
import type { ClientError, ConnectionState, RunEvent, TerminalState } from './types';
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

/** One question and everything its turn showed. */
interface Turn {
  question: string;
  /** The answer's text so far. */
  answer: string;
  /** The run's terminal state once its `done` arrived (or as the server stored it). */
  state?: TerminalState;
  /** The answer's id in the chat (its run's requestId), once the server took the turn. */
  id?: string;
  /** The run this turn follows. */
  run?: AgentRun;
  /** Who may touch the turn: callbacks of any earlier follow of it are stale. */
  gen?: object;
  /** Waiting for the human check's evidence or the server's answer; no run yet. */
  pending?: boolean;
  /** Why the turn could not start (the server refused it, or could not be reached). */
  error?: ClientError;
  el: ReturnType<typeof renderTurn>;
  /** The answer's markdown view: each delta is written to it. */
  md: ReturnType<typeof markdownView>;
}

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

const isOver = (run: AgentRun) => run.state === 'closed' || run.state === 'error';
/** The phone layout (widget-style.ts): the panel fills the screen. */
const isPhone = () => matchMedia(`(max-width: ${PHONE_MAX_PX}px)`).matches;

export function mountWidget(script: HTMLScriptElement | null = document.currentScript as HTMLScriptElement | null) {
  const config = readConfig(script);
  const host = document.createElement('edgestream-widget');
  host.dataset.position = config.position;
  host.dataset.theme = config.theme;
  const root = host.attachShadow({ mode: 'open' });
  const el = render(root, config);
  /** The chat's `{chatId, token}`, one per endpoint and agent: every tab of the site shares it. */
  const chatOptions = {
    endpoint: config.endpoint,
    agent: config.agent,
    options: config.options,
    persistKey: `edgestream-widget:${config.endpoint}:${config.agent ?? ''}`,
  };
  /**
   * The chat shown; null before the first question (made then). A stored
   * handle without a token is a chat another tab is creating right now: it
   * opens nothing yet, so it is left alone rather than taken as gone.
   */
  const restore = () => {
    const c = Chat.restore(chatOptions);
    return c?.token ? c : null;
  };
  let chat = restore();
  const turns: Turn[] = [];
  const human = humanCheck(config, host);
  let scrollQueued = false;
  /** Reading the conversation from the server: no question until it is shown. */
  let loading = false;
  /** The conversation could not be read (offline, say): read it again when the network is back. */
  let unread = false;

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
  const showError = (t: Turn, message: string | null) => {
    t.el.error.hidden = message === null;
    t.el.errorText.textContent = message ?? '';
    if (message !== null) reveal(t.el.error);
  };
  /** The client error a turn ended with: its run's, or its start's. */
  const failure = (t: Turn | undefined) => (t?.run?.state === 'error' ? t.run.error : t?.error);
  /** The fold's one line: the current step while working, how it ended after. */
  const summarise = (t: Turn) => {
    const steps = t.el.steps.querySelectorAll('li:not(.tool)');
    const current = steps[steps.length - 1]?.textContent ?? '';
    const outcome = t.state ?? (failure(t) ? 'interrupted' : undefined);
    t.el.turn.dataset.outcome = outcome ?? 'working';
    // Nothing to unfold before the first step (a run that could not start, a turn read from the chat).
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
    const error = failure(last);
    const state = last?.pending ? 'connecting' : error ? 'error' : (run?.state ?? 'closed');
    const offline = state === 'reconnecting' && !!run?.offline;
    el.conn.dataset.state = offline ? 'offline' : state;
    // Once the turn has ended, say how, rather than "Idle"; once the client gave up, say why.
    const ended = state === 'closed' && (run?.runState ?? last?.state);
    el.conn.textContent = offline
      ? 'Offline'
      : state === 'error'
        ? (ERROR_LABEL[error?.code ?? ''] ?? STATE_LABEL.error)
        : ended
          ? RUN_LABEL[ended]
          : STATE_LABEL[state];
    const live = !!run && !isOver(run);
    // Waiting for the human check counts as busy: one question at a time.
    const busy = live || !!last?.pending || loading;
    // Hiding or disabling the focused button would drop keyboard focus to <body>.
    const focused = root.activeElement;
    if ((focused === el.stop && !live) || (focused === el.send && busy)) el.input.focus();
    el.stop.hidden = !live;
    el.send.hidden = live;
    el.send.disabled = busy;
    el.hint.hidden = turns.length > 0;
    for (const t of turns) {
      const streaming = !!t.run && !isOver(t.run);
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

  const ended = (t: Turn, state: TerminalState) => {
    t.md.end();
    t.state = state;
    t.el.final.textContent = state === 'completed' ? '' : `Run ${state}.`;
  };

  const onEvent = (t: Turn, event: RunEvent) => {
    document.dispatchEvent(new CustomEvent('edgestream:event', { detail: event }));
    const loud = t === turns.at(-1);
    keepAtBottom();
    const { plan, steps } = t.el;
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
        ended(t, event.state);
        // A failed run's error was announced already.
        if (loud && event.state !== 'failed') announce(event.state === 'completed' ? 'Answer complete' : `Run ${event.state}.`);
        break;
    }
  };

  /** Only the latest follow of a turn still shown may touch the page: a late callback of an abandoned one must not. */
  const claim = (t: Turn) => {
    const gen = {};
    t.gen = gen;
    return () => t.gen === gen && turns.includes(t);
  };
  /** The callbacks of a turn's run, and what to do when it ends. */
  const watch = (t: Turn, mine: () => boolean): Pick<TurnOptions, 'onEvent' | 'onState'> => ({
    onEvent: (e) => mine() && onEvent(t, e),
    onState: () => mine() && sync(),
  });
  const adopt = (t: Turn, run: AgentRun, mine: () => boolean) => {
    t.run = run;
    t.id = run.requestId;
    sync();
    void run.finished.then((r) => {
      if (!mine() || r.state !== 'error') return;
      const message = errorMessage(r.error);
      showError(t, message);
      sync();
      if (t === turns.at(-1)) announce(message);
    });
  };

  /** Follow a turn of the chat (another tab's, or one a reload interrupted) from the event after `after`. */
  const follow = (t: Turn, requestId: string, after = 0) => {
    t.run?.disconnect();
    const c = chat!;
    const mine = claim(t);
    const path = `/v1/chat/${encodeURIComponent(c.chatId)}/events?requestId=${encodeURIComponent(requestId)}`;
    adopt(
      t,
      new AgentRun({
        endpoint: config.endpoint,
        eventsPath: path,
        resume: { requestId, token: c.token!, lastEventId: after },
        ...watch(t, mine),
      }),
      mine,
    );
  };

  const addTurn = (question: string) => {
    const view = renderTurn(question);
    const t: Turn = { question, answer: '', el: view, md: markdownView(view.answer) };
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

  /** Take `t` and every turn after it off the page. */
  const dropFrom = (t: Turn) => {
    for (const gone of turns.splice(turns.indexOf(t))) {
      gone.run?.disconnect();
      gone.el.turn.remove();
    }
    sync();
  };

  /** Show the conversation as the server has it, and follow its running turn. */
  const show = (view: ChatView) => {
    if (turns[0]) dropFrom(turns[0]);
    let question: string | undefined;
    for (const m of view.messages) {
      const text = m.parts.map((p) => p.text).join('');
      if (m.role === 'user') {
        question = text;
        continue;
      }
      const t = addTurn(question ?? '');
      question = undefined;
      t.id = m.id;
      t.answer = text;
      t.md.write(text);
      const meta = m.metadata;
      if (meta) {
        ended(t, meta.state as TerminalState);
        if (meta.error) showError(t, `${meta.error.message}.`);
      }
    }
    if (view.activeTurn) follow(addTurn(question ?? ''), view.activeTurn.requestId);
  };

  /** Read the conversation from the server. A chat the server no longer has is forgotten without a word. */
  const load = async () => {
    const c = chat;
    if (!c) return;
    loading = true;
    sync();
    try {
      const view = await c.messages();
      if (c !== chat) return;
      unread = false;
      show(view);
    } catch (err) {
      if (c !== chat) return;
      unread = !(err instanceof ChatError && err.status < 500);
      // Expired, or its id taken by another's chat: the next question starts a new one.
      if (err instanceof ChatError && err.code === 'chat_not_found') {
        c.forget();
        chat = null;
      }
    } finally {
      if (c === chat || !chat) loading = false;
      sync();
    }
    // A conversation in progress (a reload mid-chat) opens where it was.
    if (turns.length && el.panel.hidden) setOpen(true);
  };

  /** Start the turn `t` (`again`: ask the question of that answer again, in its place). */
  const start = (t: Turn, again?: string) => {
    const mine = claim(t);
    t.pending = true;
    t.error = undefined;
    sync();
    // A fresh ticket/token for every start (Retry included); a turn dropped meanwhile starts nothing.
    human
      .evidence()
      .then(async (evidence) => {
        if (!mine()) return;
        chat ??= new Chat(chatOptions);
        const c = chat;
        const turn = { ...evidence, ...watch(t, mine) };
        try {
          const run = await (again ? c.regenerate({ ...turn, messageId: again }) : c.send(t.question, turn));
          t.pending = false;
          if (mine()) return adopt(t, run, mine);
          run.disconnect();
          // New chat while this turn was starting: its chat is forgotten (its first answer stored it again).
          if (!chat) {
            void c.stop().catch(() => {});
            c.forget();
          }
        } catch (err) {
          t.pending = false;
          if (!mine()) return;
          // Another tab is mid-turn: show that turn (and the chat as it is now); the question waits in the input.
          if (err instanceof ChatError && err.code === 'chat_busy') {
            dropFrom(t);
            el.input.value ||= t.question;
            return load();
          }
          // A fetch that failed outright: the network, or CORS (an origin the service does not allow).
          t.error =
            err instanceof ChatError
              ? err
              : ((await originRefused(config.endpoint, fetch)) ?? { code: 'unreachable', message: 'Could not reach the chat service' });
          const message = errorMessage(t.error);
          if (t.error.code === 'origin_not_allowed') console.error(`edgestream widget: ${message}`);
          showError(t, message);
          announce(message);
          sync();
        }
      })
      .catch((err: Error) => {
        t.pending = false;
        if (!mine()) return;
        showError(t, err.message);
        announce(err.message);
        sync();
      });
  };

  const ask = (q: string) => {
    const query = q.trim();
    if (!query || el.send.disabled) return; // one answer at a time
    el.input.value = '';
    start(addTurn(query));
    toBottom(); // asking means wanting to see the answer
  };

  const retry = (t: Turn) => {
    const run = t.run;
    const e = failure(t);
    showError(t, null);
    // A lost connection resumes the same run; a run that failed, or that the server refused, is asked again.
    if (run?.state === 'error' && (e?.code === 'retries_exhausted' || !e?.status || e.status >= 500))
      return follow(t, run.requestId!, run.lastEventId);
    const again = t.state && t.id;
    dropFrom(t);
    start(addTurn(t.question), again);
  };

  const newChat = () => {
    const c = chat;
    const run = turns.at(-1)?.run;
    // Nobody will see this answer any more (the chat is forgotten): stop paying for it.
    if (run && !isOver(run)) void c?.stop().catch(() => {});
    c?.forget();
    chat = null;
    loading = false;
    if (turns[0]) dropFrom(turns[0]);
    sync();
  };

  /**
   * Back online, or the tab looked at again: carry on every answer whose
   * connection was given up on, without waiting for a click on Retry.
   */
  const resumeLost = () => {
    if (document.visibilityState === 'hidden') return;
    if (unread) void load();
    // (A question that could not reach the service is asked again: a `chat_busy` then shows it running.)
    for (const t of turns) if (/^(retries_exhausted|unreachable)$/.test(failure(t)?.code ?? '')) retry(t);
  };
  addEventListener('online', resumeLost);
  document.addEventListener('visibilitychange', resumeLost);
  // Another tab started a chat or forgot this one ("New chat"): show the same one here.
  addEventListener('storage', (e) => {
    if (e.key !== chatOptions.persistKey) return;
    const next = restore();
    if (!e.newValue || (next && next.chatId !== chat?.chatId)) {
      chat = next;
      loading = false;
      if (turns[0]) dropFrom(turns[0]);
      void load();
    }
  });

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
  // Stops the chat's running turn on the server: its run ends cancelled, in every tab that shows it.
  el.stop.addEventListener('click', () => {
    const t = turns.at(-1);
    void chat?.stop().catch(() => t && showError(t, 'Could not stop the run.'));
  });

  sync();
  renderLauncher(el.launcher, false, config.title);
  document.body.append(host);
  // On a phone the open panel covers the whole page: data-open waits for a tap there.
  if (config.open && !isPhone()) setOpen(true);
  void load();
  return { host, ask, newChat, open: () => setOpen(true, true), close: () => setOpen(false, true) };
}
