// Stop the runtime in the middle of a run (its isolate and agent die, the
// persisted log does not), start it again, and resume: the log must be
// complete and end with exactly one `done`.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startDevServer, type DevServer } from '../support/dev-server';
import { createRun, range, readSse, seqsOf, textOf, waitForState, type SseEvent } from '../support/sse';
import { demoEventCount, demoText } from './demo-reference';

let servers: DevServer[] = [];

afterEach(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  for (const s of servers) rmSync(s.persistDir, { recursive: true, force: true });
  servers = [];
});

async function start(port: number, persistDir?: string) {
  const server = await startDevServer({ port, persistDir, vars: { RETRY_MS: '100' } });
  servers.push(server);
  return server;
}

describe.each(['SIGKILL', 'SIGINT'] as const)('a runtime stopped with %s mid-run', (signal) => {
  it('resumes the run after restart: complete log, same text, one done', async () => {
    const port = await freePort();
    const first = await start(port);
    const query = `restart with ${signal}`;
    const options = { tokens: 400, delayMs: 15 };
    const { requestId, token } = await createRun(first.url, { query, options });
    const auth = { Authorization: `Bearer ${token}` };
    const before = await readSse(`${first.url}/v1/runs/${requestId}/events`, { headers: auth }, (evs) => evs.length >= 60);
    await first.stop(signal);

    const second = await start(port, first.persistDir);
    const lastSeen = before.events.at(-1)!.data.seq as number;
    const [resumed, fromStart] = await Promise.all([
      readSse(`${second.url}/v1/runs/${requestId}/events`, { headers: { ...auth, 'Last-Event-ID': String(lastSeen) } }),
      readSse(`${second.url}/v1/runs/${requestId}/events`, { headers: auth }),
    ]);
    const all: SseEvent[] = [...before.events, ...resumed.events];
    const total = demoEventCount(options.tokens);
    expect(seqsOf(all)).toEqual(range(1, total));
    expect(seqsOf(fromStart.events)).toEqual(range(1, total));
    expect(textOf(all)).toBe(demoText(query, options));
    expect(textOf(fromStart.events)).toBe(demoText(query, options));
    expect(all.filter((e) => e.event === 'done').map((e) => e.data.state)).toEqual(['completed']);
    const status = await waitForState(second.url, requestId, token);
    expect(status).toMatchObject({ state: 'completed', lastEventId: total });
  });
});

describe('a run restarted with nobody reading', () => {
  it('is picked up by its alarm and finishes without any request', async () => {
    const port = await freePort();
    const first = await start(port);
    const options = { tokens: 150, delayMs: 20 };
    const { requestId, token } = await createRun(first.url, { query: 'unattended', options });
    await new Promise((r) => setTimeout(r, 800));
    await first.stop('SIGKILL');
    const second = await start(port, first.persistDir);
    // No request touches the run for a while: only the watchdog alarm can resume it.
    await new Promise((r) => setTimeout(r, 22_000));
    const res = await fetch(`${second.url}/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } });
    const status = (await res.json()) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'completed', lastEventId: demoEventCount(options.tokens) });
  });
});
