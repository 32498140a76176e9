// The UI message stream mapping, round-tripped through the AI SDK's own
// parser (`parseJsonEventStream` with `uiMessageChunkSchema`, then
// `readUIMessageStream`): every chunk must pass the SDK's schema, and the
// message the SDK assembles must say what the run said.
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema, type UIMessage, type UIMessageChunk } from 'ai';
import { describe, expect, it } from 'vitest';
import { UI_STREAM_END, encodeUiChunk, uiMessageMapper, type UiChunk } from '../../src/chat/ui-message-stream';
import type { RunEvent, RunEventBody } from '../../src/events';

const REQUEST_ID = 'run_chat_mapping';

/** A run's log: the `run` event, then `bodies`, numbered from seq 1. */
function runLog(bodies: RunEventBody[]): RunEvent[] {
  const all: RunEventBody[] = [{ type: 'run', agent: 'demo', createdAt: 1 }, ...bodies];
  return all.map((body, i) => ({ requestId: REQUEST_ID, seq: i + 1, ts: 1000 + i, ...body }) as RunEvent);
}

function toSse(events: RunEvent[], messageId = REQUEST_ID): { sse: string; chunks: UiChunk[] } {
  const mapper = uiMessageMapper(messageId);
  const chunks = events.flatMap((e) => mapper.map(e));
  return { sse: chunks.map(encodeUiChunk).join('') + UI_STREAM_END, chunks };
}

/** The SSE text as a byte stream cut into pieces of `size` bytes (frames split anywhere). */
function bytes(text: string, size: number): ReadableStream<Uint8Array> {
  const all = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= all.length) return controller.close();
      controller.enqueue(all.slice(at, at + size));
      at += size;
    },
  });
}

/** What the SDK's transport does with a response body: parse and validate every chunk. */
async function parseChunks(sse: string, size = 7): Promise<UIMessageChunk[]> {
  const parsed = parseJsonEventStream({ stream: bytes(sse, size), schema: uiMessageChunkSchema });
  const chunks: UIMessageChunk[] = [];
  for await (const result of parsed as unknown as AsyncIterable<{ success: boolean; value?: UIMessageChunk; error?: unknown }>) {
    if (!result.success) throw new Error(`the SDK refused a chunk: ${String(result.error)}`);
    chunks.push(result.value!);
  }
  return chunks;
}

/** The message the SDK assembles from the stream, and the errors it reported. */
async function roundTrip(events: RunEvent[]): Promise<{ message: UIMessage; errors: string[]; chunks: UIMessageChunk[] }> {
  const { sse } = toSse(events);
  const chunks = await parseChunks(sse);
  const errors: string[] = [];
  let message: UIMessage | undefined;
  const stream = new ReadableStream<UIMessageChunk>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  for await (const snapshot of readUIMessageStream({ stream, onError: (e) => errors.push((e as Error).message) })) message = snapshot;
  return { message: message!, errors, chunks };
}

const textOf = (m: UIMessage) =>
  m.parts
    .filter((p) => p.type === 'text')
    .map((p) => (p as { text: string }).text)
    .join('');

const STAGES: RunEventBody[] = [
  { type: 'status', status: 'planning', message: 'Planning the answer' },
  { type: 'plan', steps: ['Understand', 'Search', 'Write'] },
  { type: 'status', status: 'searching', message: 'Searching' },
  { type: 'tool', messageId: 'm1', name: 'search', phase: 'call', input: { query: 'q' } },
  { type: 'tool', messageId: 'm1', name: 'search', phase: 'result', output: { results: [{ title: 'Notes', score: 0.9 }] } },
  { type: 'status', status: 'generating', message: 'Writing' },
  { type: 'delta', messageId: 'm1', text: 'Hello' },
  { type: 'delta', messageId: 'm1', text: ', world' },
];

describe('UI message stream mapping, through the AI SDK parser', () => {
  it('maps a completed run: start with the stable id, data parts, tool parts, text, finish stop, [DONE]', async () => {
    const events = runLog([
      ...STAGES,
      { type: 'result', messageId: 'm1', text: 'Hello, world', data: { tokens: 2 } },
      { type: 'done', state: 'completed' },
    ]);
    const { message, errors, chunks } = await roundTrip(events);
    expect(errors).toEqual([]);
    expect(message.id).toBe(REQUEST_ID);
    expect(message.role).toBe('assistant');
    expect(textOf(message)).toBe('Hello, world');
    // One status part, updated in place to the latest; the plan as its own part.
    const status = message.parts.filter((p) => p.type === 'data-status');
    expect(status).toEqual([{ type: 'data-status', id: 'status', data: { status: 'generating', message: 'Writing' } }]);
    expect(message.parts.find((p) => p.type === 'data-plan')).toMatchObject({ data: { steps: ['Understand', 'Search', 'Write'] } });
    expect(message.parts.find((p) => p.type === 'data-result')).toMatchObject({ data: { tokens: 2 } });
    const tool = message.parts.find((p) => p.type === 'dynamic-tool') as Record<string, unknown>;
    expect(tool).toMatchObject({
      toolName: 'search',
      state: 'output-available',
      input: { query: 'q' },
      output: { results: [{ title: 'Notes', score: 0.9 }] },
    });
    expect(message.metadata).toEqual({ requestId: REQUEST_ID, state: 'completed' });
    expect(chunks.at(-1)).toEqual({ type: 'finish', finishReason: 'stop', messageMetadata: { requestId: REQUEST_ID, state: 'completed' } });
    expect(chunks.map((c) => c.type).slice(0, 2)).toEqual(['start', 'start-step']);
    expect(toSse(events).sse.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('opens one text part per run of deltas, closing it around a tool call', async () => {
    const events = runLog([
      { type: 'delta', messageId: 'm1', text: 'Before. ' },
      { type: 'tool', messageId: 'm1', name: 'lookup', phase: 'call', input: { id: 1 } },
      { type: 'tool', messageId: 'm1', name: 'lookup', phase: 'result', output: 'found' },
      { type: 'delta', messageId: 'm1', text: 'After.' },
      { type: 'result', messageId: 'm1', text: 'Before. After.' },
      { type: 'done', state: 'completed' },
    ]);
    const { message, errors } = await roundTrip(events);
    expect(errors).toEqual([]);
    expect(message.parts.map((p) => p.type).filter((t) => t !== 'step-start')).toEqual(['text', 'dynamic-tool', 'text']);
    expect(textOf(message)).toBe('Before. After.');
    expect(message.parts.every((p) => p.type !== 'text' || (p as { state?: string }).state === 'done')).toBe(true);
  });

  it('pairs tool results with their calls by name, oldest first, and takes a result that had no call', async () => {
    const events = runLog([
      { type: 'tool', messageId: 'm1', name: 'a', phase: 'call', input: { n: 1 } },
      { type: 'tool', messageId: 'm1', name: 'a', phase: 'call', input: { n: 2 } },
      { type: 'tool', messageId: 'm1', name: 'a', phase: 'result', output: 'one' },
      { type: 'tool', messageId: 'm1', name: 'b', phase: 'result', output: 'orphan' },
      { type: 'tool', messageId: 'm1', name: 'a', phase: 'result', output: 'two' },
      { type: 'done', state: 'completed' },
    ]);
    const { message, errors } = await roundTrip(events);
    expect(errors).toEqual([]);
    const tools = message.parts.filter((p) => p.type === 'dynamic-tool') as unknown as {
      toolName: string;
      input: unknown;
      output: unknown;
    }[];
    expect(tools.map((t) => [t.toolName, t.input, t.output])).toEqual([
      ['a', { n: 1 }, 'one'],
      ['a', { n: 2 }, 'two'],
      ['b', {}, 'orphan'],
    ]);
  });

  it("takes a non-streaming agent's answer from its result", async () => {
    const events = runLog([
      { type: 'result', messageId: 'm1', text: 'all at once' },
      { type: 'done', state: 'completed' },
    ]);
    const { message } = await roundTrip(events);
    expect(textOf(message)).toBe('all at once');
  });

  it('keeps text with line breaks, quotes and U+2028 intact', async () => {
    const tricky = 'line one\nline two\r\n"quoted" \u2028 sep \\ end';
    const events = runLog([
      { type: 'delta', messageId: 'm1', text: tricky },
      { type: 'done', state: 'completed' },
    ]);
    const { message } = await roundTrip(events);
    expect(textOf(message)).toBe(tricky);
  });

  const failures: [string, { code: string; message: string; retryable: boolean }][] = [
    ['an agent error', { code: 'demo_failure', message: 'demo agent failed after 3 deltas', retryable: false }],
    ['its deadline (timed out)', { code: 'deadline_exceeded', message: 'the run passed its deadline of 60 s', retryable: false }],
    ['storage failing', { code: 'storage_failed', message: "the run's output could not be stored; start it again", retryable: true }],
    ['a runtime restart', { code: 'interrupted', message: 'the run was interrupted by a restart of the runtime', retryable: true }],
    ['a silent producer', { code: 'producer_timeout', message: 'no events were appended for 30 s', retryable: true }],
  ];
  for (const [why, error] of failures) {
    it(`ends a run failed by ${why} with its error, its metadata and finish error`, async () => {
      const events = runLog([
        { type: 'delta', messageId: 'm1', text: 'partial' },
        { type: 'error', ...error },
        { type: 'done', state: 'failed' },
      ]);
      const { message, errors, chunks } = await roundTrip(events);
      expect(errors).toEqual([error.message]);
      expect(textOf(message)).toBe('partial');
      expect(message.metadata).toEqual({ requestId: REQUEST_ID, state: 'failed', error });
      const types = chunks.map((c) => c.type);
      expect(types.slice(-5)).toEqual(['text-end', 'message-metadata', 'error', 'finish-step', 'finish']);
      expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'error' });
    });
  }

  it('ends a cancelled run with abort and finish, keeping the text so far', async () => {
    const events = runLog([
      { type: 'delta', messageId: 'm1', text: 'stopped here' },
      { type: 'done', state: 'cancelled' },
    ]);
    const { message, errors, chunks } = await roundTrip(events);
    expect(errors).toEqual([]);
    expect(textOf(message)).toBe('stopped here');
    expect(chunks.slice(-2)).toEqual([
      { type: 'abort', reason: 'cancelled' },
      { type: 'finish', finishReason: 'other', messageMetadata: { requestId: REQUEST_ID, state: 'cancelled' } },
    ]);
    expect(message.metadata).toMatchObject({ state: 'cancelled' });
  });

  it('maps nothing after done, and abandons a stream that cannot go on with an error and finish', async () => {
    const mapper = uiMessageMapper('m');
    const [run, delta, done] = runLog([
      { type: 'delta', messageId: 'm1', text: 'x' },
      { type: 'done', state: 'completed' },
    ]);
    mapper.map(run!);
    mapper.map(delta!);
    expect(mapper.ended).toBe(false);
    const abandoned = mapper.abandon('the run is gone');
    expect(abandoned.map((c) => c.type)).toEqual(['text-end', 'error', 'finish']);
    expect(mapper.ended).toBe(true);
    expect(mapper.map(done!)).toEqual([]);
    // The abandoned stream still parses.
    const sse = [run!, delta!].flatMap((e) => uiMessageMapper('m').map(e));
    await parseChunks([...sse, ...abandoned].map(encodeUiChunk).join('') + UI_STREAM_END);
  });

  it("abandons a stream before any event with the turn's requestId in its metadata, or none at all", async () => {
    const known = uiMessageMapper(REQUEST_ID, REQUEST_ID).abandon('the run is gone');
    expect(known).toEqual([
      { type: 'start', messageId: REQUEST_ID, messageMetadata: { requestId: REQUEST_ID } },
      { type: 'error', errorText: 'the run is gone' },
      { type: 'finish', finishReason: 'error', messageMetadata: { requestId: REQUEST_ID } },
    ]);
    const unknown = uiMessageMapper('m').abandon('the run is gone');
    for (const chunk of unknown) if ('messageMetadata' in chunk) expect(chunk.messageMetadata).toEqual({});
    const chunks = await parseChunks([...known, ...unknown].map(encodeUiChunk).join('') + UI_STREAM_END);
    expect(chunks).toHaveLength(6);
  });

  it('gives a replay of the same run the same chunks and message id (a resume replaces, not duplicates)', async () => {
    const events = runLog([...STAGES, { type: 'done', state: 'completed' }]);
    // What a reader got live before its connection dropped, then what a fresh
    // mapper (a resume, another tab) makes of the whole log: the live stream
    // must be the start of the replay, chunk ids included, or useChat would
    // hold two copies of the answer.
    for (let cut = 1; cut < events.length; cut++) {
      const live = toSse(events.slice(0, cut)).chunks;
      const replay = toSse(events).chunks;
      expect(replay.slice(0, live.length), `cut after ${cut} events`).toEqual(live);
    }
    const ids = (await parseChunks(toSse(events).sse, 1))
      .filter((c) => c.type === 'start')
      .map((c) => (c as { messageId?: string }).messageId);
    expect(ids).toEqual([REQUEST_ID]);
  });

  it('frames every chunk as one data line the SDK accepts, byte for byte', () => {
    expect(encodeUiChunk({ type: 'text-delta', id: 'text-1', delta: 'a\nb' })).toBe(
      'data: {"type":"text-delta","id":"text-1","delta":"a\\nb"}\n\n',
    );
    expect(UI_STREAM_END).toBe('data: [DONE]\n\n');
  });
});
