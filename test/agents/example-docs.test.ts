// docs/agents.md stays exact: each TypeScript sample is the real code of a
// file it points to, each PROFILES sample is a valid configuration, and the
// configuration mistake it quotes is what a deployment logs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../src/schemas'; // sets zod's English messages, as the Worker does
import { parseProfiles } from '../../src/profiles/profile';
import { ROOT } from '../support/dev-server';

const DOC = readFileSync(join(ROOT, 'docs/agents.md'), 'utf8');
const SOURCES = ['src/agents/examples/echo.ts', 'src/agents/types.ts', 'src/agents/registry.ts', 'test/agents/example.test.ts'];
const blocks = (lang: string) => [...DOC.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);

describe('docs/agents.md', () => {
  it('quotes every TypeScript sample verbatim from the code', () => {
    const sources = SOURCES.map((path) => readFileSync(join(ROOT, path), 'utf8'));
    expect(blocks('ts').length).toBeGreaterThanOrEqual(4);
    for (const block of blocks('ts'))
      expect(
        sources.some((source) => source.includes(block)),
        block,
      ).toBe(true);
  });

  it('shows the example agent and the copyable contract test whole', () => {
    for (const path of ['src/agents/examples/echo.ts', 'test/agents/example.test.ts']) {
      expect(blocks('ts')).toContain(readFileSync(join(ROOT, path), 'utf8'));
    }
  });

  it('gives PROFILES samples that a deployment accepts', () => {
    expect(blocks('json')).toHaveLength(1);
    const { profiles, issues } = parseProfiles(blocks('json')[0], 3600);
    expect(issues).toEqual([]);
    expect(profiles.map((p) => [p.name, p.agent])).toEqual([
      ['echo', 'echo'],
      ['backwards', 'echo'],
    ]);
    expect(profiles[0]!.settings).toEqual({ prefix: 'You said:' });
    const inline = DOC.match(/--var PROFILES:'([^']+)'/)![1];
    expect(parseProfiles(inline, 3600).issues).toEqual([]);
  });

  it('quotes the configuration mistake as a deployment logs it', () => {
    const { issues } = parseProfiles(JSON.stringify({ echo: { agent: 'echo', prefx: 'You said:' } }), 3600);
    expect(issues).toEqual(['PROFILES.echo.prefx: not a profile key of the echo agent']);
    expect(DOC).toContain(`\`invalid configuration: ${issues[0]}\``);
  });
});
