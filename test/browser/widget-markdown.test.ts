// The widget's markdown parser on its own (pure functions; the browser tests render it).
import { describe, expect, it } from 'vitest';
import { type MdNode, parseInline, parseMarkdown, safeHref, splitBlocks, textOf } from '../../src/client/widget-markdown';

describe('widget markdown', () => {
  it('parses paragraphs, headings, lists, quotes, rules and fenced code into blocks', () => {
    const md =
      '# Title\n\nOne *two*\nthree.\n\n- a\n- b\n  more b\n\n1. x\n2) y\n\n> quoted\n\n---\n\n```js\nlet a = `<b>`;\n\nx\n```\nafter';
    expect(parseMarkdown(md)).toEqual([
      { tag: 'p', kids: [{ tag: 'strong', kids: ['Title'] }] },
      { tag: 'p', kids: ['One ', { tag: 'em', kids: ['two'] }, ' three.'] },
      {
        tag: 'ul',
        kids: [
          { tag: 'li', kids: ['a'] },
          { tag: 'li', kids: ['b more b'] },
        ],
      },
      {
        tag: 'ol',
        kids: [
          { tag: 'li', kids: ['x'] },
          { tag: 'li', kids: ['y'] },
        ],
      },
      { tag: 'blockquote', kids: ['quoted'] },
      { tag: 'hr', kids: [] },
      { tag: 'pre', kids: [{ tag: 'code', kids: ['let a = `<b>`;\n\nx'] }] },
      { tag: 'p', kids: ['after'] },
    ]);
  });

  it('parses inline code, strong, emphasis and links, and keeps snake_case and unclosed markers as text', () => {
    expect(parseInline('`a*b*` **s _e_** my_var_name *open')).toEqual([
      { tag: 'code', kids: ['a*b*'] },
      ' ',
      { tag: 'strong', kids: ['s ', { tag: 'em', kids: ['e'] }] },
      ' my_var_name *open',
    ]);
    expect(parseInline('see [docs](https://example.com/a?b=1) or https://example.com/x.')).toEqual([
      'see ',
      { tag: 'a', href: 'https://example.com/a?b=1', kids: ['docs'] },
      ' or ',
      { tag: 'a', href: 'https://example.com/x', kids: ['https://example.com/x'] },
      '.',
    ]);
  });

  it('gives a link an href only when it is http(s), and shows an image as its alt text', () => {
    const links = (md: string) => parseInline(md).filter((n): n is Exclude<MdNode, string> => typeof n !== 'string');
    for (const bad of [
      'javascript:alert(1)',
      'JAVASCRIPT:alert(1)',
      'data:text/html,x',
      'vbscript:x',
      '/relative',
      '//host/x',
      'file:///etc/passwd',
    ]) {
      expect(links(`[x](${bad})`), bad).toEqual([{ tag: 'a', kids: ['x'] }]);
      expect(safeHref(bad), bad).toBeNull();
    }
    expect(links('![a pixel](https://tracker.example/p.png)')).toEqual([{ tag: 'span', cls: 'md-img', kids: ['a pixel'] }]);
  });

  it('parses a table with a header row', () => {
    expect(parseMarkdown('| a | *b* |\n| - | :-: |\n| 1 | 2 |')).toEqual([
      {
        tag: 'table',
        kids: [
          {
            tag: 'thead',
            kids: [
              {
                tag: 'tr',
                kids: [
                  { tag: 'th', kids: ['a'] },
                  { tag: 'th', kids: [{ tag: 'em', kids: ['b'] }] },
                ],
              },
            ],
          },
          {
            tag: 'tbody',
            kids: [
              {
                tag: 'tr',
                kids: [
                  { tag: 'td', kids: ['1'] },
                  { tag: 'td', kids: ['2'] },
                ],
              },
            ],
          },
        ],
      },
    ]);
  });

  it('keeps HTML as text', () => {
    const md = '<img src=x onerror="alert(1)"> <script>alert(2)</script>';
    expect(parseMarkdown(md)).toEqual([{ tag: 'p', kids: [md] }]);
  });

  it('ends blocks only at complete blank lines, and a code fence only at its closing line', () => {
    expect(splitBlocks('a\n\nb')).toEqual({ ended: ['a\n'], openAt: 3 });
    expect(splitBlocks('a\n')).toEqual({ ended: [], openAt: 0 }); // the next line may still continue the paragraph
    expect(splitBlocks('```\nx\n\ny')).toEqual({ ended: [], openAt: 0 }); // a blank line inside a fence
    expect(splitBlocks('```\nx\n```\nz')).toEqual({ ended: ['```\nx\n```'], openAt: 10 });
  });

  it('renders the same text however the answer is cut into deltas', () => {
    const md = 'Intro **bold** text.\n\n- one `code`\n- two\n\n```\n<b>raw</b>\n```\n\nEnd with [a link](https://example.com).';
    const whole = textOf(parseMarkdown(md));
    expect(whole).toBe('Intro bold text.one codetwo<b>raw</b>End with a link.');
    // the view keeps ended blocks and rebuilds the open one: the same split, applied as the text grows
    for (const size of [1, 2, 3, 7, 50]) {
      let text = '';
      const nodes: MdNode[] = [];
      for (let i = 0; i < md.length; i += size) {
        text += md.slice(i, i + size);
        const { ended, openAt } = splitBlocks(text);
        nodes.push(...ended.flatMap((b) => parseMarkdown(b)));
        text = text.slice(openAt);
      }
      nodes.push(...parseMarkdown(text));
      expect(textOf(nodes), `pieces of ${size}`).toBe(whole);
    }
  });
});
