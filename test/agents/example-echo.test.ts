// What the echo example does beyond the contract suite (example.test.ts):
// its documented failure, the deployer's prefix, reverse, a restart's replay.
import { describe, expect, it } from 'vitest';
import { EchoOptions, echoAgent } from '../../src/agents/examples/echo';
import { AgentError } from '../../src/agents/types';
import { collect } from './contract';

const input = (query: string, options: Partial<EchoOptions> = {}) => ({
  requestId: 'r',
  query,
  messages: [],
  options: EchoOptions.parse({ delayMs: 0, ...options }),
});
const textOf = (events: Awaited<ReturnType<typeof collect>>) => events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');

describe('echo', () => {
  it('answers with the query word by word, whitespace collapsed', async () => {
    const events = await collect(echoAgent, input('  one\ttwo\n three '), {});
    expect(events).toEqual([
      { type: 'status', status: 'generating', message: 'Echoing 3 words' },
      { type: 'delta', messageId: 'm1', text: 'one' },
      { type: 'delta', messageId: 'm1', text: ' two' },
      { type: 'delta', messageId: 'm1', text: ' three' },
      { type: 'result', messageId: 'm1', text: 'one two three', data: { words: 3 } },
    ]);
  });

  it('reverse: last word first', async () => {
    expect(textOf(await collect(echoAgent, input('one two three', { reverse: true }), {}))).toBe('three two one');
  });

  it('fails a query without words with nothing_to_echo, not retryable, before any event', async () => {
    const events: unknown[] = [];
    const run = async () => {
      for await (const e of echoAgent.run(input(' \n '), new AbortController().signal, { env: {} as never, skip: 0 })) events.push(e);
    };
    await expect(run()).rejects.toThrow(AgentError);
    await expect(run()).rejects.toMatchObject({ code: 'nothing_to_echo', retryable: false, message: 'the query has no words to echo' });
    expect(events).toEqual([]);
  });

  it("says the profile's prefix first, as its own delta", async () => {
    const events = [];
    for await (const e of echoAgent.run(input('hi there'), new AbortController().signal, {
      env: {} as never,
      skip: 0,
      settings: { prefix: 'You said:' },
    }))
      events.push(e);
    expect(events.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text)).toEqual(['You said:', ' hi', ' there']);
    expect(events.at(-1)).toMatchObject({ type: 'result', text: 'You said: hi there', data: { words: 2 } });
  });

  it('validates options: defaults, bounds, no unknown keys', () => {
    expect(EchoOptions.parse({})).toEqual({ delayMs: 50, reverse: false });
    expect(echoAgent.options.safeParse({ delayMs: 10_001 }).success).toBe(false);
    expect(echoAgent.options.safeParse({ delay: 5 }).success).toBe(false);
    expect(echoAgent.settings!.safeParse({ prefix: 'ok' }).success).toBe(true);
    expect(echoAgent.settings!.safeParse({ prefx: 'typo' }).success).toBe(false);
  });

  it('replays the events a restarted run already holds without waiting, then waits again', async () => {
    const query = 'a b c d e f g h i j';
    const slow = { ...input(query), options: EchoOptions.parse({ delayMs: 100 }) };
    const started = Date.now();
    const events = [];
    // The run held the status and 8 deltas: those 9 come at once, the last two words 100 ms apart.
    for await (const e of echoAgent.run(slow, new AbortController().signal, { env: {} as never, skip: 9 })) events.push(e);
    const took = Date.now() - started;
    expect(events).toEqual(await collect(echoAgent, input(query), {}));
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(600);
  });

  it('aborted before it starts, it yields at most its status', async () => {
    const abort = new AbortController();
    abort.abort();
    const events = [];
    for await (const e of echoAgent.run(input('one two'), abort.signal, { env: {} as never, skip: 0 })) events.push(e);
    expect(events.map((e) => e.type)).toEqual(['status']);
  });
});
