// The client and the widget under immutable, versioned URLs, as wrangler dev
// serves them (its [build] ran scripts/build-client.mjs; the Worker serves
// the URLs from static/v/<version>/, src/routes/released.ts): cached for a
// year, open to other origins, with the bytes whose sha384 the build printed;
// and a version that does not exist is a 404 nobody caches.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDevServer, type DevServer } from '../support/dev-server';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const IMMUTABLE = 'public, max-age=31536000, immutable';

let server: DevServer;
/** What the build prints: `SRI /widget@<v>.js: sha384-...`, per versioned file. */
let printed: Record<string, string>;

beforeAll(async () => {
  server = await startDevServer();
  const log = execFileSync(process.execPath, ['scripts/build-client.mjs'], { cwd: ROOT, encoding: 'utf8' });
  printed = Object.fromEntries([...log.matchAll(/^SRI (\S+): (sha384-\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
});
afterAll(async () => {
  await server?.stop();
});

const sha384 = (bytes: ArrayBuffer) => `sha384-${createHash('sha384').update(Buffer.from(bytes)).digest('base64')}`;

describe.each(['widget', 'client'])('/%s@<version>.js', (name) => {
  const path = () => `/${name}@${version}.js`;

  it('is served at once (no redirect), cached for a year as immutable, to any origin', async () => {
    const res = await fetch(`${server.url}${path()}`, { redirect: 'manual' });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('content-type')).toMatch(/javascript/);
  });

  it('has the sha384 the build printed, and that /sri.json lists', async () => {
    const body = await (await fetch(`${server.url}${path()}`)).arrayBuffer();
    const listed = (await (await fetch(`${server.url}/sri.json`)).json()) as { version: string; integrity: Record<string, string> };
    expect(printed[path()]).toMatch(/^sha384-[A-Za-z0-9+/]{64}$/);
    expect(sha384(body)).toBe(printed[path()]);
    expect(listed.version).toBe(version);
    expect(listed.integrity[path()]).toBe(printed[path()]);
  });
});

describe('a released file that does not exist', () => {
  it.each(['/widget@9.9.9.js', '/client@0.0.1-nope.js', '/widget@latest.js', '/widget@..%2F..%2Findex.html.js'])(
    '%s is a 404 JSON error that is never cached',
    async (path) => {
      const res = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      expect(res.status).toBe(404);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    },
  );

  it('HEAD of a released file answers as GET does, without a body', async () => {
    const res = await fetch(`${server.url}/widget@${version}.js`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
});

describe('the README', () => {
  it('shows each pinned URL with the hash the deployment serves for it', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const shown = [...readme.matchAll(/(?:client|widget)@[0-9][^\s"`]*?\.js[\s\S]{0,120}?(sha384-[A-Za-z0-9+/]{64})/g)];
    const listed = ((await (await fetch(`${server.url}/sri.json`)).json()) as { integrity: Record<string, string> }).integrity;
    expect(shown.length).toBeGreaterThanOrEqual(2);
    for (const [match, hash] of shown) expect(listed[`/${/(?:client|widget)@[^\s"`]*?\.js/.exec(match)![0]}`]).toBe(hash);
  });
});

describe('the unversioned /widget.js and /client.js', () => {
  it.each(['/widget.js', '/client.js'])('%s keeps working with a short cache', async (path) => {
    const res = await fetch(`${server.url}${path}`);
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(body.length).toBeGreaterThan(1000);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it.each(['/_headers', '/_redirects'])('serves no %s file', async (path) => {
    const res = await fetch(`${server.url}${path}`);
    await res.body?.cancel();
    expect(res.status).toBe(404);
  });

  it('answers 404 for a version that was never released', async () => {
    const res = await fetch(`${server.url}/widget@0.0.0-never.js`, { redirect: 'manual' });
    await res.body?.cancel();
    expect(res.status).toBe(404);
  });
});
