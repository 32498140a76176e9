/**
 * Model text as rich text, streamed: paragraphs, headings (as bold
 * paragraphs: the panel's title stays its only heading), emphasis, bulleted
 * and numbered lists, quotes, inline code, fenced code blocks and links.
 *
 * Safe by construction: markdown is parsed into a small tree of tags from a
 * fixed list and plain strings, and the tree becomes elements and text
 * nodes; nothing is ever parsed as HTML, so `<img onerror>` in an answer is
 * just text. Links get an `href` only when it is http(s), and open in a new
 * tab with `rel="noopener noreferrer"`. Images show their alt text and are
 * never loaded: an answer must not make the page fetch what it names.
 *
 * Streaming: a blank line (outside a code fence) ends a block. Ended blocks
 * are built once; only the last, still open block is rebuilt when a delta
 * arrives, so a delta costs one block, never the whole answer.
 *
 * Why not a library: streaming-markdown (a good fit: it streams into DOM
 * nodes) is 2.7 KiB gzip here and took client + widget past their 20 KiB
 * budget; this file is about 1.2 KiB. marked and micromark output HTML
 * strings that would need a sanitizer on top, and are larger.
 */

/** A parsed piece of markdown: text, or an element from the fixed list with its children. */
export type MdNode = string | { tag: MdTag; href?: string; cls?: string; kids: MdNode[] };
type MdTag =
  | 'p'
  | 'ul'
  | 'ol'
  | 'li'
  | 'pre'
  | 'code'
  | 'blockquote'
  | 'strong'
  | 'em'
  | 'a'
  | 'span'
  | 'hr'
  | 'table'
  | 'thead'
  | 'tbody'
  | 'tr'
  | 'th'
  | 'td';

const el = (tag: MdTag, kids: MdNode[], extra: { href?: string; cls?: string } = {}): MdNode => ({ tag, kids, ...extra });

/** http(s) only: `javascript:`, `data:`, relative and malformed URLs never become a link. */
export function safeHref(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Inline markdown: `code`, **strong**, __strong__, *em*, _em_ (not inside
 * words: snake_case stays), [links](https://...), ![images](...) as their
 * alt text, and bare http(s) URLs. An unclosed marker is text until it closes.
 */
const INLINE =
  /`([^`\n]+)`|\*\*(.+?)\*\*|(?<![\w])__(.+?)__(?![\w])|\*(?![\s*])(.+?)\*|(?<![\w])_(?![\s_])(.+?)_(?![\w])|!\[([^\]]*)\]\([^)]*\)|\[([^\]]+)\]\(([^)\s]*)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"])/g;

export function parseInline(text: string): MdNode[] {
  const out: MdNode[] = [];
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    at = m.index + m[0].length;
    const [, code, strong, strong2, em, em2, alt, label, href, url] = m;
    if (code !== undefined) out.push(el('code', [code]));
    else if (strong ?? strong2) out.push(el('strong', parseInline((strong ?? strong2)!)));
    else if (em ?? em2) out.push(el('em', parseInline((em ?? em2)!)));
    else if (alt !== undefined) out.push(el('span', [alt], { cls: 'md-img' }));
    else if (label !== undefined) {
      const safe = safeHref(href!);
      out.push(el('a', parseInline(label), safe ? { href: safe } : {}));
    } else out.push(el('a', [url!], { href: safeHref(url!) ?? undefined }));
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;
/** A table's second line: `| --- | :-: |`. */
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const cells = (line: string) =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((c) => c.trim());
const FENCE = /^\s{0,3}(```|~~~)/;

/** One block (no blank line inside, or a whole code fence) as nodes. */
export function parseBlock(block: string): MdNode[] {
  const lines = block.replace(/\n+$/, '').split('\n');
  const fence = FENCE.exec(lines[0]!);
  if (fence) {
    // Open fence while streaming: everything after the first line is code so far.
    const end = lines.length > 1 && lines.at(-1)!.trim().startsWith(fence[1]!) ? -1 : undefined;
    return [el('pre', [el('code', [lines.slice(1, end).join('\n')])])];
  }
  if (lines.length > 1 && lines[0]!.includes('|') && TABLE_RULE.test(lines[1]!)) {
    const row = (line: string, tag: 'th' | 'td') =>
      el(
        'tr',
        cells(line).map((c) => el(tag, parseInline(c))),
      );
    return [
      el('table', [
        el('thead', [row(lines[0]!, 'th')]),
        el(
          'tbody',
          lines.slice(2).map((l) => row(l, 'td')),
        ),
      ]),
    ];
  }
  const out: MdNode[] = [];
  let para: string[] = [];
  let list: { tag: 'ul' | 'ol'; items: string[] } | null = null;
  const flush = () => {
    if (para.length) out.push(el('p', parseInline(para.join(' '))));
    if (list)
      out.push(
        el(
          list.tag,
          list.items.map((item) => el('li', parseInline(item))),
        ),
      );
    para = [];
    list = null;
  };
  for (const line of lines) {
    const item = LIST_ITEM.exec(line);
    if (item) {
      const tag = /\d/.test(item[1]!) ? 'ol' : 'ul';
      if (!list || list.tag !== tag) flush();
      list ??= { tag, items: [] };
      list.items.push(item[2]!);
    } else if (list && /^\s+\S/.test(line)) {
      list.items[list.items.length - 1] += ` ${line.trim()}`; // an item's continuation line
    } else if (/^\s{0,3}#{1,6}\s/.test(line)) {
      flush();
      out.push(el('p', [el('strong', parseInline(line.replace(/^\s*#+\s+/, '')))]));
    } else if (/^\s{0,3}>/.test(line)) {
      flush();
      out.push(el('blockquote', parseInline(line.replace(/^\s*>\s?/, ''))));
    } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      out.push(el('hr', []));
    } else {
      if (list) flush();
      para.push(line.trim());
    }
  }
  flush();
  return out;
}

/**
 * Split markdown into blocks: the ended ones, and where the open last one
 * starts. A blank line ends a block, except inside a code fence, which ends
 * at its closing line. The last line may still be growing: it ends nothing.
 */
export function splitBlocks(text: string): { ended: string[]; openAt: number } {
  const ended: string[] = [];
  let start = 0; // where the current block begins
  let at = 0; // where the current line begins
  let inFence: string | null = null;
  const end = (upTo: number, next: number) => {
    const block = text.slice(start, upTo);
    if (block.trim()) ended.push(block);
    start = next;
  };
  for (let nl = text.indexOf('\n'); nl !== -1; at = nl + 1, nl = text.indexOf('\n', at)) {
    const line = text.slice(at, nl);
    const fence = FENCE.exec(line);
    if (inFence) {
      if (fence && line.trim().startsWith(inFence) && at > start) {
        inFence = null;
        end(nl, nl + 1);
      }
    } else if (!line.trim()) end(at, nl + 1);
    else if (fence) {
      end(at, at);
      inFence = fence[1]!;
    }
  }
  return { ended, openAt: start };
}

function toDom(node: MdNode): Node {
  if (typeof node === 'string') return document.createTextNode(node);
  const e = document.createElement(node.tag);
  if (node.cls) e.className = node.cls;
  if (node.href) {
    e.setAttribute('href', node.href);
    e.setAttribute('rel', 'noopener noreferrer');
    e.setAttribute('target', '_blank');
  }
  e.append(...node.kids.map(toDom));
  return e;
}

/** A whole answer as nodes: what a view shows once every delta of `text` was written. */
export function parseMarkdown(text: string): MdNode[] {
  const { ended, openAt } = splitBlocks(text);
  return [...ended, text.slice(openAt)].flatMap(parseBlock);
}

/** The text a tree shows (its `textContent` once rendered). */
export const textOf = (nodes: MdNode[]): string => nodes.map((n) => (typeof n === 'string' ? n : textOf(n.kids))).join('');

/** A streaming markdown view into `root`: `write` each delta, `end` once. */
export function markdownView(root: HTMLElement): { write: (text: string) => void; end: () => void } {
  let text = ''; // from the start of the open block: ended blocks are in the DOM for good
  let open: Node[] = []; // the open block's nodes, rebuilt on every write
  let done = false;
  const render = () => {
    for (const n of open) root.removeChild(n);
    const { ended, openAt } = splitBlocks(text);
    for (const block of ended) root.append(...parseBlock(block).map(toDom));
    text = text.slice(openAt);
    open = parseBlock(text).map(toDom);
    root.append(...open);
  };
  return {
    write: (delta) => {
      if (done || !delta) return;
      text += delta;
      render();
    },
    end: () => {
      done = true;
    },
  };
}
