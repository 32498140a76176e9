#!/usr/bin/env node
// Bundle the browser client into static/: client.js (ES module) and widget.js
// (classic script, includes the client). Prints raw and gzip sizes.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const common = { bundle: true, minify: true, target: ['es2022'], legalComments: 'none', logLevel: 'warning' };
await Promise.all([
  build({ ...common, entryPoints: ['src/client/index.ts'], format: 'esm', outfile: 'static/client.js' }),
  build({ ...common, entryPoints: ['src/client/widget-entry.ts'], format: 'iife', outfile: 'static/widget.js' }),
]);

let total = 0;
for (const file of ['static/client.js', 'static/widget.js']) {
  const bytes = readFileSync(file);
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`${file}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip`);
}
console.log(`client + widget: ${(total / 1024).toFixed(1)} KiB gzip`);
