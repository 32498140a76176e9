/**
 * Start and stop a real `wrangler dev` for end-to-end tests: a free port on
 * 127.0.0.1, quiet and offline, optional persisted state (for restarts) and
 * `--var` overrides. The process runs in its own group so stop/kill take
 * workerd down with it.
 *
 * Hermetic: the Worker sees wrangler.toml's `[vars]` and the test's `--var`s
 * only. `--env-file` names an empty file, so wrangler reads neither the
 * developer's `.dev.vars` nor `.env`; the shell's environment is not copied
 * into the Worker (test/support/hermetic.ts); state lives in a fresh
 * `--persist-to` directory, never in `.wrangler/state`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, emptyEnvFile, hermeticWranglerEnv } from './hermetic';

export { ROOT };

export interface DevServer {
  url: string;
  port: number;
  persistDir: string;
  /** Everything wrangler printed so far (for failure messages). */
  output: () => string;
  /** Stop gracefully (SIGINT) or abruptly (SIGKILL); resolves when the process group is gone. */
  stop: (signal?: 'SIGINT' | 'SIGKILL') => Promise<void>;
}

export interface DevServerOptions {
  /** Keep Durable Object state here; reuse it to restart "the same" runtime. */
  persistDir?: string;
  /** Reuse a port (e.g. to restart behind the same URL). */
  port?: number;
  vars?: Record<string, string>;
  /** Extra wrangler config (defaults to the project's wrangler.toml). */
  config?: string;
  readyTimeoutMs?: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), 'edgestream-e2e-'));
  const args = [
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    '0',
    '--show-interactive-dev-session=false',
    '--persist-to',
    persistDir,
    '--env-file',
    emptyEnvFile(),
    '--log-level',
    'warn',
  ];
  if (options.config) args.push('--config', options.config);
  for (const [key, value] of Object.entries(options.vars ?? {})) args.push('--var', `${key}:${value}`);
  const child = spawn(join(ROOT, 'node_modules/.bin/wrangler'), args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...hermeticWranglerEnv(process.env),
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
      NO_COLOR: '1',
    },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const server: DevServer = { url, port, persistDir, output: () => output, stop: (signal) => stopGroup(child, signal) };
  try {
    await waitReady(url, child, options.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await server.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- wrangler output ---\n${output}`);
  }
  return server;
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/v1/agents`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev not ready at ${url} after ${timeoutMs} ms`);
}

async function stopGroup(child: ChildProcess, signal: 'SIGINT' | 'SIGKILL' = 'SIGINT'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 10_000);
  await exited;
  clearTimeout(timer);
  // workerd may outlive wrangler's node process by a moment; make sure the group is gone.
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}
