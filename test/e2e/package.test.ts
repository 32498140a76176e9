// The client as a user gets it: `npm pack` (which builds pkg/ through
// prepack), the tarball installed offline into a scratch app, and an import
// of each entry point type-checked with tsc, under the module resolutions
// apps use. Nothing of the Worker is in the tarball.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/hermetic';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Uses every entry point; the @ts-expect-error lines fail to compile if an entry's types were `any`. */
const APP = `
import { AgentRun, startRun, type RunEvent } from 'edgestream';
import { resumeRun, type RunHandle } from 'edgestream/client';
import { useAgentRun, type AgentRunView } from 'edgestream/react';
import { mountWidget } from 'edgestream/widget';

const run: AgentRun = startRun({ endpoint: 'https://agents.example', query: 'Hello' });
export async function firstDelta(): Promise<string | undefined> {
  for await (const event of run) if (event.type === 'delta') return event.text;
  return undefined;
}
const handle: RunHandle = { requestId: 'r1', token: 't', lastEventId: 0 };
export const resumed: AgentRun = resumeRun({ endpoint: 'https://agents.example', resume: handle });
export const events: RunEvent[] = [];
export function View(): string {
  const view: AgentRunView = useAgentRun({ endpoint: 'https://agents.example' });
  return view.text;
}
export const mount: typeof mountWidget = mountWidget;

// @ts-expect-error -- a misspelt option: the client's types are real
startRun({ endpoint: 'https://agents.example', qurey: 'Hello' });
// @ts-expect-error -- the hook needs an endpoint
useAgentRun({});
// @ts-expect-error -- mountWidget takes a script element (or null), not a URL
mountWidget('https://agents.example');
`;

const tsconfig = (moduleResolution: 'bundler' | 'nodenext' | 'node10') => ({
  compilerOptions: {
    target: 'es2022',
    module: moduleResolution === 'nodenext' ? 'nodenext' : 'es2022',
    moduleResolution,
    lib: ['es2023', 'dom', 'dom.iterable'],
    types: [],
    strict: true,
    noEmit: true,
    // The package's own .d.ts are checked too.
    skipLibCheck: false,
  },
  files: ['app.ts'],
});

let scratch: string;
let files: string[];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'edgestream-pack-'));
  const packed = execFileSync(NPM, ['pack', '--json', '--pack-destination', scratch], { cwd: ROOT, encoding: 'utf8' });
  // prepack's build log comes before the JSON on stdout.
  const [info] = JSON.parse(packed.slice(packed.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[];
  files = info!.files.map((f) => f.path);
  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
  execFileSync(NPM, ['install', '--offline', '--no-audit', '--no-fund', join(scratch, info!.filename)], { cwd: app, stdio: 'pipe' });
  // React's types for the hook, as an app that uses it has them (no network here).
  mkdirSync(join(app, 'node_modules/@types'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules/@types/react'), join(app, 'node_modules/@types/react'), 'junction');
  writeFileSync(join(app, 'app.ts'), APP);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the client, the hook, the widget and their types, and none of the Worker', () => {
    for (const file of [
      'package.json',
      'LICENSE',
      'README.md',
      'pkg/client.js',
      'pkg/react.js',
      'pkg/widget.js',
      'pkg/widget.global.js',
      'pkg/types/client/index.d.ts',
      'pkg/types/client/react.d.ts',
      'pkg/types/client/widget.d.ts',
    ]) {
      expect(files).toContain(file);
    }
    expect(files.filter((f) => /^(src|test|bench|scripts|static)\/|^wrangler\.toml$|^\.dev\.vars/.test(f))).toEqual([]);
  });

  it('installs offline with no dependencies of its own', () => {
    const installed = JSON.parse(readFileSync(join(scratch, 'app/node_modules/edgestream/package.json'), 'utf8'));
    expect(installed.version).toBe(version);
    expect(installed.dependencies ?? {}).toEqual({});
    expect(installed.peerDependenciesMeta.react.optional).toBe(true);
  });

  // node10 ignores `exports`: it finds the types through `types` and `typesVersions`.
  it.each(['bundler', 'nodenext', 'node10'] as const)(
    'type-checks an app importing every entry point (moduleResolution %s)',
    (resolution) => {
      const app = join(scratch, 'app');
      writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution)));
      let output = '';
      try {
        execFileSync(process.execPath, [TSC, '-p', `tsconfig.${resolution}.json`], { cwd: app, encoding: 'utf8' });
      } catch (err) {
        output = (err as { stdout?: string }).stdout ?? String(err);
      }
      expect(output).toBe('');
    },
  );

  it('runs: the installed client module loads in Node and exports its API', () => {
    const script = "import('edgestream').then((m) => console.log(typeof m.startRun, typeof m.AgentRun, typeof m.backoffDelay))";
    const out = execFileSync(process.execPath, ['-e', script], { cwd: join(scratch, 'app'), encoding: 'utf8' });
    expect(out.trim()).toBe('function function function');
  });
});
