/** The widget's styles, scoped by its shadow root (nothing leaks in or out). */
export const WIDGET_CSS = `
:host { all: initial; position: fixed; z-index: 2147483000; bottom: 20px; right: 20px;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --bg: #ffffff; --fg: #1b1f24; --muted: #5b6470; --line: #d9dee4; --accent: #2456d6; --accent-fg: #fff;
  --soft: #f3f5f8; --err: #b42318; --err-bg: #fdecea; color-scheme: light; }
:host([data-position="bottom-left"]) { right: auto; left: 20px; }
:host([data-theme="dark"]) { --bg: #16191d; --fg: #e8eaed; --muted: #a2abb6; --line: #323840; --accent: #7aa2ff;
  --accent-fg: #0b1020; --soft: #20252b; --err: #ffb4ab; --err-bg: #3b1512; color-scheme: dark; }
@media (prefers-color-scheme: dark) {
  :host([data-theme="auto"]) { --bg: #16191d; --fg: #e8eaed; --muted: #a2abb6; --line: #323840; --accent: #7aa2ff;
    --accent-fg: #0b1020; --soft: #20252b; --err: #ffb4ab; --err-bg: #3b1512; color-scheme: dark; }
}
* { box-sizing: border-box; }
button, textarea { font: inherit; color: inherit; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.launcher { display: flex; align-items: center; gap: 8px; border: 0; border-radius: 999px; padding: 12px 18px;
  background: var(--accent); color: var(--accent-fg); font-weight: 600; cursor: pointer; box-shadow: 0 6px 20px rgb(0 0 0 / .25); }
.panel { position: absolute; bottom: 60px; right: 0; width: min(400px, calc(100vw - 40px)); height: min(560px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg); border: 1px solid var(--line);
  border-radius: 14px; box-shadow: 0 12px 40px rgb(0 0 0 / .3); overflow: hidden;
  transition: opacity .15s ease, transform .15s ease; }
:host([data-position="bottom-left"]) .panel { right: auto; left: 0; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 6px; padding: 12px 14px; border-bottom: 1px solid var(--line); }
h2 { margin: 0; font-size: 15px; flex: 1; min-width: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.conn { font-size: 12px; color: var(--muted); display: inline-flex; align-items: center; gap: 6px; flex: none; white-space: nowrap; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.conn[data-state="open"]::before { background: #1a7f37; }
.conn[data-state="reconnecting"]::before, .conn[data-state="connecting"]::before { background: #bf8700; }
.conn[data-state="error"]::before { background: var(--err); }
.icon { border: 0; background: transparent; cursor: pointer; font-size: 18px; line-height: 1; padding: 4px 6px; border-radius: 6px; }
.new { font-size: 12px; line-height: 1.2; color: var(--muted); flex: none; white-space: nowrap; padding: 4px; }
.body { flex: 1; overflow-y: auto; padding: 12px 14px; display: flex; flex-direction: column; gap: 18px; }
.hint { margin: auto 16px; text-align: center; color: var(--muted); }
.hint[hidden] { display: none; }
.turn { display: flex; flex-direction: column; gap: 10px; }
.turn:not(:last-child) .retry { display: none; }
.question { align-self: flex-end; max-width: 85%; background: var(--accent); color: var(--accent-fg); padding: 8px 12px;
  border-radius: 12px 12px 2px 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
.question:empty, .plan:empty, .steps:empty { display: none; }
.plan { margin: 0; padding: 8px 12px 8px 28px; background: var(--soft); border-radius: 8px; color: var(--muted); font-size: 13px; }
.steps { list-style: none; margin: 0; padding: 0; font-size: 13px; color: var(--muted); display: grid; gap: 4px; }
.steps li::before { content: "✓ "; }
.steps li[aria-current]::before { content: "… "; }
.steps li.tool::before { content: "⚙ "; }
.answer { white-space: pre-wrap; overflow-wrap: anywhere; }
.answer[data-streaming="true"]::after { content: "▍"; animation: blink 1s steps(1) infinite; color: var(--accent); }
@keyframes blink { 50% { opacity: 0; } }
.final { font-size: 12px; color: var(--muted); }
.error { background: var(--err-bg); color: var(--err); border-radius: 8px; padding: 8px 10px; display: flex; gap: 8px; align-items: center; }
.error[hidden] { display: none; }
.check { display: flex; justify-content: center; }
.error span { flex: 1; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--line); align-items: flex-end; }
textarea { flex: 1; resize: none; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--bg); min-height: 40px; max-height: 120px; }
.btn { border: 0; border-radius: 8px; padding: 9px 14px; background: var(--accent); color: var(--accent-fg); font-weight: 600; cursor: pointer; }
.btn.secondary { background: var(--soft); color: var(--fg); border: 1px solid var(--line); }
.btn[hidden] { display: none; }
.btn:disabled { opacity: .5; cursor: not-allowed; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (prefers-reduced-motion: reduce) {
  .panel { transition: none; }
  .answer[data-streaming="true"]::after { animation: none; }
}
`;
