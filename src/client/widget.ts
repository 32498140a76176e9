/**
 * The embeddable chat widget: one `<script>` tag adds a launcher and a chat
 * panel inside a shadow DOM.
 *
 *   <script src="https://HOST/widget.js" data-endpoint="https://HOST" async></script>
 *
 * Options (data attributes): data-endpoint (default: the script's origin),
 * data-agent, data-options (JSON), data-title, data-position (bottom-right | bottom-left),
 * data-theme (light | dark | auto), data-open ("true" opens on load).
 *
 * Model output is untrusted: it is only ever set as text, never as HTML.
 * Each event is also dispatched on `document` as `edgestream:event`, so a
 * page can show the raw log (the demo page does).
 */
import { AgentRun } from './run';
import type { ConnectionState, RunEvent } from './types';
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
}

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

/** Build the DOM once; `el` keeps references to the parts that change. */
function render(root: ShadowRoot, config: WidgetConfig) {
  const h = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = '') => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  };
  const style = h('style');
  style.textContent = WIDGET_CSS;
  const launcher = h('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'es-panel' });
  // An inline icon, not an emoji: emoji fonts are missing on many systems.
  launcher.innerHTML = CHAT_ICON; // a constant of ours, not model text
  launcher.append(config.title);
  const panel = h('section', { class: 'panel', id: 'es-panel', role: 'dialog', 'aria-label': config.title, hidden: '' });
  const header = h('header');
  const title = h('h2', {}, config.title);
  const conn = h('span', { class: 'conn', role: 'status', 'data-state': 'closed' }, STATE_LABEL.closed);
  const close = h('button', { class: 'icon', type: 'button', 'aria-label': 'Close chat' }, '×');
  header.append(title, conn, close);
  const body = h('div', { class: 'body' });
  const question = h('div', { class: 'question' });
  const plan = h('ol', { class: 'plan', 'aria-label': 'Plan' });
  const steps = h('ul', { class: 'steps', 'aria-label': 'Progress' });
  const answer = h('div', { class: 'answer', 'aria-live': 'polite', 'aria-atomic': 'false', 'aria-label': 'Answer' });
  const final = h('div', { class: 'final' });
  const error = h('div', { class: 'error', role: 'alert', hidden: '' });
  const errorText = h('span');
  const retry = h('button', { class: 'btn secondary', type: 'button' }, 'Retry');
  error.append(errorText, retry);
  body.append(question, plan, steps, answer, final, error);
  const form = h('form');
  const label = h('label', { class: 'sr-only', for: 'es-input' }, 'Your question');
  const input = h('textarea', { id: 'es-input', rows: '2', placeholder: 'Ask a question…', maxlength: '16000' });
  const send = h('button', { class: 'btn', type: 'submit' }, 'Send');
  const stop = h('button', { class: 'btn secondary', type: 'button', hidden: '' }, 'Stop');
  form.append(label, input, send, stop);
  panel.append(header, body, form);
  root.append(style, launcher, panel);
  return { launcher, panel, conn, close, body, question, plan, steps, answer, final, error, errorText, retry, form, input, send, stop };
}

export function mountWidget(script: HTMLScriptElement | null = document.currentScript as HTMLScriptElement | null) {
  const config = readConfig(script);
  const host = document.createElement('edgestream-widget');
  host.dataset.position = config.position;
  host.dataset.theme = config.theme;
  const root = host.attachShadow({ mode: 'open' });
  const el = render(root, config);
  const persistKey = `edgestream-widget:${config.endpoint}`;
  const questionKey = `${persistKey}:question`;
  let run: AgentRun | null = null;
  let lastQuestion = '';

  const setOpen = (open: boolean) => {
    el.panel.hidden = !open;
    el.launcher.setAttribute('aria-expanded', String(open));
    if (open) el.input.focus();
    else el.launcher.focus();
  };
  const setConn = (state: ConnectionState, from?: AgentRun) => {
    el.conn.dataset.state = state;
    // Once the run has ended, say how, rather than "Idle".
    el.conn.textContent = state === 'closed' && from?.runState ? RUN_LABEL[from.runState] : STATE_LABEL[state];
  };
  const setBusy = (busy: boolean) => {
    el.stop.hidden = !busy;
    el.send.disabled = busy;
    el.answer.dataset.streaming = String(busy);
  };
  const showError = (message: string | null) => {
    el.error.hidden = message === null;
    el.errorText.textContent = message ?? '';
  };
  const reset = (q: string) => {
    el.question.textContent = q;
    el.plan.replaceChildren();
    el.steps.replaceChildren();
    el.answer.textContent = '';
    el.final.textContent = '';
    showError(null);
  };

  const onEvent = (event: RunEvent) => {
    document.dispatchEvent(new CustomEvent('edgestream:event', { detail: event }));
    switch (event.type) {
      case 'plan':
        el.plan.replaceChildren(...event.steps.map((s) => Object.assign(document.createElement('li'), { textContent: s })));
        break;
      case 'status': {
        for (const li of el.steps.querySelectorAll('li.current')) li.classList.remove('current');
        const li = Object.assign(document.createElement('li'), { textContent: event.message, className: 'current' });
        el.steps.append(li);
        break;
      }
      case 'tool':
        el.steps.append(
          Object.assign(document.createElement('li'), {
            textContent: `${event.phase === 'call' ? 'Calling' : 'Result from'} ${event.name}`,
            className: 'tool',
          }),
        );
        break;
      case 'delta':
        // append, never innerHTML: model text is untrusted
        el.answer.append(event.text);
        break;
      case 'result':
        // Deltas already showed the text; an agent that streams none sends it whole here.
        if (!el.answer.textContent) el.answer.textContent = event.text;
        break;
      case 'error':
        showError(event.message);
        break;
      case 'done':
        for (const li of el.steps.querySelectorAll('li.current')) li.classList.remove('current');
        el.final.textContent = event.state === 'completed' ? '' : `Run ${event.state}.`;
        setBusy(false);
        break;
    }
    el.body.scrollTop = el.body.scrollHeight;
  };

  const follow = (next: AgentRun) => {
    run?.disconnect();
    run = next;
    setBusy(true);
    void next.finished.then((r) => {
      if (run !== r) return;
      setBusy(false);
      if (r.state === 'error') showError(`${r.error?.message ?? 'Connection lost'}.`);
    });
  };
  const common = () => ({ endpoint: config.endpoint, persistKey, onEvent, onState: setConn });

  const ask = (q: string) => {
    const text = q.trim();
    if (!text) return;
    lastQuestion = text;
    try {
      sessionStorage.setItem(questionKey, text);
    } catch {
      // storage blocked: the run still works, it just won't survive a reload
    }
    reset(text);
    el.input.value = '';
    follow(new AgentRun({ ...common(), query: text, agent: config.agent, options: config.options }));
  };

  el.launcher.addEventListener('click', () => setOpen(el.panel.hidden));
  el.close.addEventListener('click', () => setOpen(false));
  root.addEventListener('keydown', (e) => {
    const key = (e as KeyboardEvent).key;
    if (key === 'Escape' && !el.panel.hidden) setOpen(false);
  });
  el.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      el.form.requestSubmit();
    }
  });
  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!el.send.disabled) ask(el.input.value);
  });
  el.stop.addEventListener('click', () => void run?.cancel().catch(() => showError('Could not stop the run.')));
  el.retry.addEventListener('click', () => {
    const handle = run?.handle;
    // A dropped connection resumes the same run; a failed run is asked again.
    if (run?.state === 'error' && handle && run.runState === undefined) {
      showError(null);
      follow(new AgentRun({ ...common(), resume: handle }));
    } else if (lastQuestion) ask(lastQuestion);
  });

  // A reload mid-answer: replay the run from its start, then follow it live.
  const restored = AgentRun.restore({ ...common(), persistKey, fromStart: true });
  if (restored) {
    lastQuestion = (() => {
      try {
        return sessionStorage.getItem(questionKey) ?? '';
      } catch {
        return '';
      }
    })();
    reset(lastQuestion);
    follow(restored);
  }
  document.body.append(host);
  if (config.open || restored) setOpen(true);
  return { host, ask, open: () => setOpen(true), close: () => setOpen(false) };
}
