#!/usr/bin/env node
// Bundle the browser client.
//
// Every run (wrangler.toml's [build], so before every `wrangler dev` and
// `wrangler deploy`) writes into static/, which the Worker serves:
//   client.js, widget.js          ES module / classic script, the current source;
//                                 a short cache (static/_headers)
//   v/<v>/client.js, widget.js    the release <v> (package.json's version), served as
//                                 /client@<v>.js and /widget@<v>.js (src/routes/released.ts)
//                                 and cached for a year as immutable: made once, when
//                                 absent, committed at release, never rewritten
//   sri.json                      the sha384 Subresource Integrity of every released
//                                 file in static/v/ (the current one is also printed)
// Prints raw and gzip sizes.
//
// With --package (run by `npm pack` / `npm publish` through `prepack`) it also
// writes pkg/, the files of the npm package (package.json `exports`):
//   client.js, react.js, widget.js  ES modules, shared code in chunks, React external
//   widget.global.js                the classic script (static/widget.js)
//   types/                          .d.ts emitted by tsc from src/client
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const STATIC = 'static';
const PKG = 'pkg';
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version)) throw new Error(`package.json version ${version} is not semver`);

/**
 * The widget's CSS is a template literal (widget-style.ts), which esbuild
 * leaves as written: squeeze its whitespace, as a CSS minifier would, before
 * bundling. Only spaces next to `{ } ; , >` go (never inside `calc()`'s
 * `a - b`, where CSS needs them); values and strings keep theirs.
 */
const compactCss = {
  name: 'compact-widget-css',
  setup(b) {
    b.onLoad({ filter: /widget-style\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const contents = source.replace(/(= `)([\s\S]*?)(`;)/g, (_, open, css, close) => {
        const squeezed = css
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .replace(/\s+/g, ' ')
          .replace(/\s*([{};,>])\s*/g, '$1')
          .replace(/;}/g, '}');
        return open + squeezed.trim() + close;
      });
      return { contents, loader: 'ts' };
    });
  },
};

const common = { bundle: true, minify: true, target: ['es2022'], legalComments: 'none', logLevel: 'warning', plugins: [compactCss] };
const clientBuild = { ...common, entryPoints: ['src/client/index.ts'], format: 'esm' };
const widgetBuild = { ...common, entryPoints: ['src/client/widget-entry.ts'], format: 'iife' };
await Promise.all([build({ ...clientBuild, outfile: `${STATIC}/client.js` }), build({ ...widgetBuild, outfile: `${STATIC}/widget.js` })]);

let total = 0;
for (const file of [`${STATIC}/client.js`, `${STATIC}/widget.js`]) {
  const bytes = readFileSync(file);
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`${file}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip`);
}
console.log(`client + widget: ${(total / 1024).toFixed(1)} KiB gzip`);

// An immutable URL must never change its bytes: sites embed it with its
// integrity hash, and a changed file would stop loading there. So a released
// version's file is made once and then only compared. (Not named `widget@<v>.js`
// on disk: the assets server redirects a path with `@` to its `%40` spelling.)
const RELEASES = `${STATIC}/v`;
mkdirSync(`${RELEASES}/${version}`, { recursive: true });
for (const name of ['client', 'widget']) {
  const current = readFileSync(`${STATIC}/${name}.js`);
  const released = `${RELEASES}/${version}/${name}.js`;
  if (!existsSync(released)) {
    writeFileSync(released, current);
    console.log(`${released}: new; commit it with the release of ${version}`);
  } else if (!readFileSync(released).equals(current)) {
    console.log(`${released}: kept as released; ${name}.js has changes since (bump the version to release them)`);
  }
}

/** `sha384-<base64>`, as a `<script integrity>` attribute wants it. */
const sri = (file) => `sha384-${createHash('sha384').update(readFileSync(file)).digest('base64')}`;
const integrity = {};
for (const v of readdirSync(RELEASES).sort()) {
  for (const name of ['client', 'widget']) {
    const file = `${RELEASES}/${v}/${name}.js`;
    if (existsSync(file)) integrity[`/${name}@${v}.js`] = sri(file);
  }
}
writeFileSync(`${STATIC}/sri.json`, `${JSON.stringify({ version, integrity }, null, 2)}\n`);
for (const name of ['widget', 'client']) console.log(`SRI /${name}@${version}.js: ${integrity[`/${name}@${version}.js`]}`);

if (process.argv.includes('--package')) await buildPackage();

/** pkg/: what `npm pack` ships (package.json `files`). */
async function buildPackage() {
  rmSync(PKG, { recursive: true, force: true });
  await build({
    ...common,
    // Readable for whoever steps into it; the app's bundler minifies.
    minify: false,
    entryPoints: { client: 'src/client/index.ts', react: 'src/client/react.ts', widget: 'src/client/widget.ts' },
    format: 'esm',
    splitting: true,
    outdir: PKG,
    chunkNames: 'chunks/[name]-[hash]',
    // The app brings its own React (an optional peer dependency).
    external: ['react'],
  });
  copyFileSync(`${STATIC}/widget.js`, `${PKG}/widget.global.js`);
  const tsc = spawnSync(
    process.execPath,
    [
      'node_modules/typescript/bin/tsc',
      '-p',
      'src/client/tsconfig.json',
      '--noEmit',
      'false',
      '--declaration',
      '--emitDeclarationOnly',
      '--rootDir',
      'src',
      '--outDir',
      `${PKG}/types`,
    ],
    { stdio: 'inherit' },
  );
  if (tsc.status !== 0) throw new Error('tsc could not emit the client .d.ts');
  addJsExtensions(`${PKG}/types`);
  console.log(`${PKG}/: client.js, react.js, widget.js, widget.global.js, types/ (edgestream@${version})`);
}

/**
 * The sources import `./run`; an app type-checked with `moduleResolution:
 * node16`/`nodenext` needs `./run.js` in .d.ts files (bundler resolution takes either).
 */
function addJsExtensions(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8').replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+?)\2/g, (all, lead, quote, path) =>
      /\.[cm]?js$/.test(path) ? all : `${lead}${quote}${path}.js${quote}`,
    );
    writeFileSync(file, text);
  }
}
