/**
 * The widget's styles, scoped by its shadow root (nothing leaks in or out).
 * Targets are at least 44 px (touch); under PHONE_MAX_PX the panel fills the
 * screen, inside the safe areas, and the launcher hides beneath it. The input
 * is 16 px: iOS zooms the page into any smaller input.
 */
/** Narrower than this (a phone held upright), the panel fills the screen. */
export const PHONE_MAX_PX = 480;

const DARK =
  '--bg: #16191d; --fg: #e8eaed; --muted: #a9b1bb; --line: #3a414a; --accent: #8fb0ff; --accent-fg: #0b1020; ' +
  '--soft: #22272e; --code: #0f1216; --err: #ffb4ab; --err-bg: #3b1512; --ok: #56d364; --warn: #e3b341; color-scheme: dark;';

export const WIDGET_CSS = `
:host { all: initial; position: fixed; z-index: 2147483000; bottom: 20px; right: 20px;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #1f4fd1; --accent-fg: #fff;
  --soft: #f3f5f8; --code: #f6f8fa; --err: #a4161a; --err-bg: #fdecea; --ok: #1a7f37; --warn: #9a6700; color-scheme: light; }
:host([data-position="bottom-left"]) { right: auto; left: 20px; }
:host([data-theme="dark"]) { ${DARK} }
@media (prefers-color-scheme: dark) { :host([data-theme="auto"]) { ${DARK} } }
* { box-sizing: border-box; }
button, textarea { font: inherit; color: inherit; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
svg { flex: none; }
.launcher { display: flex; align-items: center; justify-content: center; gap: 8px; border: 0; border-radius: 999px;
  min-height: 56px; min-width: 56px; padding: 0 20px; margin-left: auto;
  background: var(--accent); color: var(--accent-fg); font-weight: 600; cursor: pointer; box-shadow: 0 6px 20px rgb(0 0 0 / .25); }
.launcher[aria-expanded="true"] { padding: 0; }
.panel { position: absolute; bottom: 72px; right: 0; width: min(400px, calc(100vw - 40px)); height: min(600px, calc(100vh - 112px));
  display: flex; flex-direction: column; background: var(--bg); color: var(--fg); border: 1px solid var(--line);
  border-radius: 14px; box-shadow: 0 12px 40px rgb(0 0 0 / .3); overflow: hidden; }
:host([data-position="bottom-left"]) .panel { right: auto; left: 0; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 4px; padding: 6px 6px 6px 16px; border-bottom: 1px solid var(--line); }
.heading { flex: 1; min-width: 0; display: flex; flex-direction: column; }
h2 { margin: 0; font-size: 16px; line-height: 1.3; overflow-wrap: anywhere; }
.conn { font-size: 13px; color: var(--muted); display: inline-flex; align-items: center; gap: 6px; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.conn[data-state="open"]::before { background: var(--ok); }
.conn[data-state="reconnecting"]::before, .conn[data-state="connecting"]::before, .conn[data-state="offline"]::before { background: var(--warn); }
.conn[data-state="error"]::before { background: var(--err); }
.icon { border: 0; background: transparent; cursor: pointer; min-width: 44px; min-height: 44px; border-radius: 8px;
  display: inline-flex; align-items: center; justify-content: center; flex: none; }
.icon:hover, .copy:hover { background: var(--soft); }
.new { padding: 0 10px; font-size: 14px; white-space: nowrap; }
.main { flex: 1; min-height: 0; position: relative; display: flex; }
.body { flex: 1; overflow-y: auto; padding: 14px 16px; display: flex; flex-direction: column; gap: 18px; overscroll-behavior: contain; }
.body:focus-visible { outline-offset: -3px; }
.hint { margin: auto 16px; text-align: center; color: var(--muted); }
.hint[hidden], .jump[hidden], .tools[hidden], .notice[hidden], .work[hidden] { display: none; }
.jump { position: absolute; bottom: 12px; left: 50%; transform: translateX(-50%); display: inline-flex; align-items: center; gap: 6px;
  min-height: 44px; padding: 0 16px; border-radius: 999px; border: 1px solid var(--line); background: var(--bg); color: var(--fg);
  font-weight: 600; cursor: pointer; box-shadow: 0 4px 14px rgb(0 0 0 / .2); }
.turn { display: flex; flex-direction: column; gap: 8px; }
.turn:not(:last-child) .retry { display: none; }
.question { align-self: flex-end; max-width: 85%; background: var(--accent); color: var(--accent-fg); padding: 8px 12px;
  border-radius: 14px 14px 4px 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.work { font-size: 13px; color: var(--muted); }
.work summary { cursor: pointer; min-height: 28px; display: flex; align-items: center; gap: 6px; width: fit-content; border-radius: 6px; }
.work summary::before { content: "▸"; }
.work[open] summary::before { content: "▾"; }
.turn[data-outcome="cancelled"] .work summary, .turn[data-outcome="failed"] .work summary, .turn[data-outcome="interrupted"] .work summary { color: var(--err); }
.plan:empty, .steps:empty { display: none; }
.plan { margin: 6px 0; padding: 8px 12px 8px 28px; background: var(--soft); border-radius: 8px; }
.steps { list-style: none; margin: 6px 0 0; padding: 0; display: grid; gap: 2px; }
.steps li::before { content: "✓ "; color: var(--ok); }
.steps li[aria-current]::before { content: "… "; color: var(--muted); }
.steps li.tool::before { content: "⚙ "; color: var(--muted); }
.steps li.stopped::before { content: "✕ "; color: var(--err); }
.answer { overflow-wrap: anywhere; min-width: 0; }
.answer:empty { display: none; }
.answer > :first-child { margin-top: 0; }
.answer > :last-child { margin-bottom: 0; }
.answer p, .answer ul, .answer ol, .answer pre, .answer blockquote, .answer table { margin: 0 0 10px; }
.answer ul, .answer ol { padding-left: 22px; }
.answer li + li { margin-top: 2px; }
.answer .md-h { font-weight: 700; }
.answer a { color: var(--accent); text-decoration: underline; }
.answer code { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code); border: 1px solid var(--line);
  border-radius: 4px; padding: 0 3px; }
.answer pre { background: var(--code); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; white-space: pre-wrap; }
.answer pre code { border: 0; padding: 0; background: none; }
.answer blockquote { border-left: 3px solid var(--line); padding-left: 10px; color: var(--muted); margin-left: 0; }
.answer table { border-collapse: collapse; font-size: 14px; table-layout: fixed; width: 100%; }
.answer th, .answer td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; }
.answer hr { border: 0; border-top: 1px solid var(--line); }
/* The cursor follows the last words, inside the paragraph or list item they are in. */
.answer[data-streaming="true"] > :is(p, pre):last-child::after, .answer[data-streaming="true"] > :is(ul, ol):last-child > li:last-child::after {
  content: "▍"; animation: blink 1s steps(1) infinite; color: var(--accent); }
@keyframes blink { 50% { opacity: 0; } }
.tools { display: flex; gap: 4px; }
.copy { border: 1px solid var(--line); background: var(--bg); border-radius: 8px; min-height: 32px; padding: 0 12px; font-size: 13px; cursor: pointer; }
.final { font-size: 13px; color: var(--err); font-weight: 600; }
.final:empty { display: none; }
.notice { margin: 0; padding: 8px 10px; border-radius: 8px; background: var(--soft); border-left: 3px solid var(--warn); font-size: 14px; }
.error { background: var(--err-bg); color: var(--err); border-radius: 8px; padding: 8px 10px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.error[hidden] { display: none; }
.error span { flex: 1 1 200px; overflow-wrap: anywhere; }
.check { display: flex; justify-content: center; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--line); align-items: flex-end; }
textarea { flex: 1; min-width: 0; resize: none; border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px; background: var(--bg);
  font-size: 16px; line-height: 1.35; min-height: 44px; max-height: 140px; }
.send { display: grid; flex: none; }
.send > .btn { grid-area: 1 / 1; }
/* The one not shown keeps its room: the cell, and so the input, is as wide whichever shows. */
.send > .btn[hidden] { display: block; visibility: hidden; }
.btn { border: 0; border-radius: 10px; min-height: 44px; min-width: 72px; padding: 0 16px; background: var(--accent); color: var(--accent-fg);
  font-weight: 600; cursor: pointer; }
.btn.secondary { background: var(--soft); color: var(--fg); border: 1px solid var(--line); }
.btn[hidden] { display: none; }
.btn:disabled { opacity: .6; cursor: not-allowed; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: ${PHONE_MAX_PX}px) {
  :host { right: max(16px, env(safe-area-inset-right)); bottom: max(16px, env(safe-area-inset-bottom)); }
  :host([data-position="bottom-left"]) { left: max(16px, env(safe-area-inset-left)); }
  :host([data-open]) .launcher { display: none; }
  .copy, .work summary { min-height: 44px; }
  .panel, :host([data-position="bottom-left"]) .panel { position: fixed; inset: 0; width: auto; height: auto; border: 0; border-radius: 0;
    padding: env(safe-area-inset-top) env(safe-area-inset-right) env(safe-area-inset-bottom) env(safe-area-inset-left); }
}
@media (prefers-reduced-motion: reduce) {
  .answer[data-streaming="true"] *::after { animation: none; }
}
`;
