// Each relay format on its own: a fixture in the service's real wire format,
// parsed as the relay parses it, mapped to this contract's events.
import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { FORMATS } from '../../src/agents/relay/formats';
import type { UpstreamMessage } from '../../src/agents/relay/formats/format';
import { valueAt } from '../../src/agents/relay/formats/json';
import { RelaySettings } from '../../src/agents/relay/settings';
import { AgentError } from '../../src/agents/types';
import type { AgentEvent } from '../../src/events';
import { relayFixture } from '../support/fake-upstreams';

/** The SSE messages of a wire text, as the relay's reader gives them. */
function messages(wire: string): UpstreamMessage[] {
  const out: UpstreamMessage[] = [];
  const parser = createParser({
    onEvent: (e) =>
      out.push({ data: e.data, ...(e.id !== undefined ? { id: e.id } : {}), ...(e.event !== undefined ? { event: e.event } : {}) }),
  });
  parser.feed(wire);
  return out;
}

const settingsFor = (format: string, extra: object = {}) => RelaySettings.parse({ url: 'http://upstream.test/x', format, ...extra });

/** Map every message; returns the events, whether a final message came, and the failure if any. */
function map(format: keyof typeof FORMATS, wire: string, extra: object = {}) {
  const reader = FORMATS[format].create(settingsFor(format, extra));
  const events: AgentEvent[] = [];
  try {
    for (const m of messages(wire)) {
      const out = reader.read(m);
      events.push(...out.events);
      if (out.final) return { events, final: true, error: undefined };
    }
    events.push(...reader.end());
    return { events, final: false, error: undefined };
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return { events, final: false, error: err as AgentError };
  }
}

const text = (events: AgentEvent[]) => events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
const types = (events: AgentEvent[]) => events.map((e) => e.type);

describe('relay format genie (Spring SseEmitter AgentResponse)', () => {
  it('maps planning to plan, agent_stream to deltas, result to the result, and drops heartbeats', () => {
    const { events, final, error } = map('genie', relayFixture('genie-plain'));
    expect(error).toBeUndefined();
    expect(final).toBe(true);
    expect(types(events)).toEqual(['plan', 'delta', 'delta', 'delta', 'delta', 'delta', 'result']);
    expect(events[0]).toEqual({ type: 'plan', steps: ['检索 SSE 断线重连资料', '对比 WebSocket 与 SSE', '撰写总结'] });
    expect(events[1]).toEqual({ type: 'delta', messageId: 'msg-ans-1', text: '可恢复的流' });
    const result = events.at(-1)!;
    expect(result).toMatchObject({
      type: 'result',
      messageId: 'msg-ans-1',
      text: text(events),
      data: { taskSummary: text(events), agentType: 'react' },
    });
  });

  it('a stream that completes without its result message is upstream_incomplete', () => {
    const { events, error } = map('genie', relayFixture('genie-no-result'));
    expect(error?.code).toBe('upstream_incomplete');
    expect(error?.retryable).toBe(true);
    expect(text(events)).toBe('可恢复的流把每个事件先写进日志，断线后按 Last-Event-ID 补发。');
  });

  it('takes the taskSummary when result is null', () => {
    const wire =
      'data:{"messageId":"x","messageType":"result","isFinal":true,"result":null,"resultMap":{"taskSummary":"done","agentType":"plan_solve"}}\n\n';
    expect(map('genie', wire).events).toEqual([
      { type: 'result', messageId: 'x', text: 'done', data: { taskSummary: 'done', agentType: 'plan_solve' } },
    ]);
  });

  it('a result with isFinal false is held: one result, the last one, just before the end', () => {
    const { events, final, error } = map('genie', relayFixture('genie-interim-result'));
    expect(error).toBeUndefined();
    expect(final).toBe(true);
    expect(types(events)).toEqual(['plan', 'delta', 'delta', 'delta', 'delta', 'result']);
    expect(events.at(-1)).toEqual({
      type: 'result',
      messageId: 'msg-ans-1',
      text: '可恢复的流按 Last-Event-ID 补发。',
      data: { taskSummary: '可恢复的流按 Last-Event-ID 补发。', fileList: [], agentType: 'plan_solve' },
    });
  });

  it('a body that ends after a result with isFinal false ends with that result, once', () => {
    const wire = relayFixture('genie-interim-result').split('data:heartbeat\n\n')[0]!;
    const after = `${wire}data:{"messageId":"msg-ans-1","messageType":"agent_stream","isFinal":false,"result":"更多"}\n\n`;
    const { events, final, error } = map('genie', after);
    expect(error).toBeUndefined();
    expect(final).toBe(false);
    expect(types(events)).toEqual(['plan', 'delta', 'delta', 'delta', 'result']);
    expect(events.at(-1)).toMatchObject({ type: 'result', messageId: 'msg-step-1', text: '第一步：找到三篇资料。' });
  });

  it('a held result survives a restart in the reader state', () => {
    const wire = relayFixture('genie-interim-result').split('data:heartbeat\n\n')[0]!;
    const first = FORMATS.genie.create(settingsFor('genie'));
    for (const m of messages(wire)) first.read(m);
    const restored = FORMATS.genie.create(settingsFor('genie'), JSON.parse(JSON.stringify(first.state!())));
    expect(restored.end()).toEqual([
      {
        type: 'result',
        messageId: 'msg-step-1',
        text: '第一步：找到三篇资料。',
        data: { taskSummary: '第一步：找到三篇资料。', fileList: [], agentType: 'plan_solve' },
      },
    ]);
  });

  it('a message that is not JSON (other than heartbeat) is upstream_malformed', () => {
    expect(map('genie', 'data:{"messageType":"agent_stream","res\n\n').error?.code).toBe('upstream_malformed');
  });
});

describe('relay format deepsearch (sse-starlette, CRLF)', () => {
  it('maps status messages to status, search chunks to deltas and the final answer to the result', () => {
    const { events, final, error } = map('deepsearch', relayFixture('deepsearch-plain'));
    expect(error).toBeUndefined();
    expect(final).toBe(true);
    expect(types(events)).toEqual(['status', 'status', 'status', 'tool', 'delta', 'delta', 'delta', 'delta', 'result']);
    expect(events[0]).toEqual({ type: 'status', status: 'query_decomposition', message: '正在分解查询...' });
    expect(events[3]).toMatchObject({
      type: 'tool',
      name: 'search',
      phase: 'result',
      output: { query: ['SSE Last-Event-ID', 'SSE 重连 机制'] },
    });
    expect(events.at(-1)).toMatchObject({
      type: 'result',
      messageId: 'm1',
      text: text(events),
      data: { searchResult: { docs: expect.any(Array) } },
    });
    expect(text(events)).toBe('浏览器的 EventSource 断线后自动重连，并发送 Last-Event-ID；服务端从该 id 之后补发。');
  });

  it('event: error fails with upstream_error, without the service text', () => {
    const { error } = map('deepsearch', relayFixture('deepsearch-error'));
    expect(error?.code).toBe('upstream_error');
    expect(error?.message).not.toContain('10.0.0.7');
  });

  it('an in-band messageType error fails with upstream_error', () => {
    const { events, error } = map('deepsearch', relayFixture('deepsearch-inband-error'));
    expect(error?.code).toBe('upstream_error');
    expect(error?.message).not.toContain('KeyError');
    expect(types(events)).toEqual(['status', 'status', 'status', 'tool']);
  });

  it('a stream without the isFinal message is upstream_incomplete', () => {
    expect(map('deepsearch', relayFixture('deepsearch-no-final')).error?.code).toBe('upstream_incomplete');
  });

  it('its ids (the request id on every message) are not resume positions', () => {
    expect(FORMATS.deepsearch.idsAreCursors).toBe(false);
    expect(new Set(messages(relayFixture('deepsearch-plain')).map((m) => m.id))).toEqual(new Set(['req-ds-51c2', undefined]));
  });
});

describe('relay format ai-sdk (UI message stream)', () => {
  it('maps text, reasoning, tools, data parts, sources and finish', () => {
    const { events, final, error } = map('ai-sdk', relayFixture('ai-sdk-plain'));
    expect(error).toBeUndefined();
    expect(final).toBe(true);
    expect(types(events)).toEqual(['status', 'tool', 'tool', 'tool', 'status', 'delta', 'delta', 'delta', 'delta', 'delta', 'result']);
    expect(events[0]).toEqual({ type: 'status', status: 'thinking', message: 'Thinking' });
    expect(events[1]).toEqual({ type: 'tool', messageId: 'call_Qm3', name: 'search', phase: 'call', input: { query: 'resumable SSE' } });
    expect(events[2]).toEqual({ type: 'tool', messageId: 'call_Qm3', name: 'search', phase: 'result', output: { hits: 2 } });
    expect(events[3]).toEqual({ type: 'tool', messageId: 'progress-1', name: 'data-progress', phase: 'result', output: { percent: 50 } });
    expect(events[5]).toEqual({ type: 'delta', messageId: 'msg-8Kx2Lq', text: 'Resumable ' });
    expect(events.at(-1)).toEqual({
      type: 'result',
      messageId: 'msg-8Kx2Lq',
      text: 'Resumable streams keep every token.',
      data: {
        finishReason: 'stop',
        reasoning: 'The user asks about resumable streams.',
        sources: [{ url: 'https://html.spec.whatwg.org/multipage/server-sent-events.html', title: 'Server-sent events' }],
        metadata: { model: 'gpt-4o-mini' },
      },
    });
  });

  it('an error chunk fails with upstream_error, without its errorText', () => {
    const { error } = map('ai-sdk', relayFixture('ai-sdk-error'));
    expect(error?.code).toBe('upstream_error');
    expect(error?.message).not.toContain('An error occurred');
  });

  it('a stream that ends without finish is upstream_incomplete', () => {
    expect(map('ai-sdk', relayFixture('ai-sdk-no-finish')).error?.code).toBe('upstream_incomplete');
  });

  it('[DONE] without a finish still ends the answer', () => {
    const wire = 'data: {"type":"text-delta","id":"0","delta":"hi"}\n\ndata: [DONE]\n\n';
    expect(map('ai-sdk', wire).events).toEqual([
      { type: 'delta', messageId: 'm1', text: 'hi' },
      { type: 'result', messageId: 'm1', text: 'hi', data: { finishReason: null } },
    ]);
  });

  it('an abort chunk fails the run', () => {
    expect(map('ai-sdk', 'data: {"type":"abort","reason":"user"}\n\n').error?.message).toContain('aborted');
  });

  it('restores the answer so far from its state', () => {
    const first = FORMATS['ai-sdk'].create(settingsFor('ai-sdk'));
    first.read({ data: '{"type":"start","messageId":"msg-1"}' });
    first.read({ data: '{"type":"text-delta","id":"0","delta":"Hello "}' });
    const state = JSON.parse(JSON.stringify(first.state!()));
    const second = FORMATS['ai-sdk'].create(settingsFor('ai-sdk'), state);
    expect(second.read({ data: '{"type":"text-delta","id":"0","delta":"world"}' }).events).toEqual([
      { type: 'delta', messageId: 'msg-1', text: 'world' },
    ]);
    expect(second.read({ data: '{"type":"finish"}' }).events).toEqual([
      { type: 'result', messageId: 'msg-1', text: 'Hello world', data: { finishReason: null } },
    ]);
  });
});

describe('relay format edgestream (this contract)', () => {
  it('passes agent events through and drops its own run, done, seq, requestId and ts', () => {
    const { events, final, error } = map('edgestream', relayFixture('edgestream-plain'));
    expect(error).toBeUndefined();
    expect(final).toBe(true);
    expect(types(events)).toEqual(['status', 'plan', 'tool', 'tool', 'delta', 'delta', 'delta', 'delta', 'delta', 'result']);
    for (const e of events) expect(Object.keys(e)).not.toEqual(expect.arrayContaining(['seq']));
    expect(events[0]).toEqual({ type: 'status', status: 'planning', message: 'Planning the research' });
    expect(events.at(-1)).toEqual({ type: 'result', messageId: 'm1', text: 'Every event is stored first.', data: { sources: 3 } });
  });

  it("the upstream's error fails the run with upstream_error, its code and its retryable", () => {
    const { error } = map('edgestream', relayFixture('edgestream-failed'));
    expect(error?.code).toBe('upstream_error');
    expect(error?.retryable).toBe(true);
    expect(error?.message).toContain('upstream_rate_limited');
    expect(error?.message).not.toContain('HTTP 429');
  });

  it('an upstream that sends more than one result gives one, the last, just before the end', () => {
    const ev = (seq: number, fields: object) =>
      `id: ${seq}\nevent: ${(fields as { type: string }).type}\ndata: ${JSON.stringify({ requestId: 'u', seq, ts: 1, ...fields })}\n\n`;
    const wire = [
      ev(1, { type: 'delta', messageId: 'm1', text: 'a' }),
      ev(2, { type: 'result', messageId: 'm1', text: 'a' }),
      ev(3, { type: 'delta', messageId: 'm1', text: 'b' }),
      ev(4, { type: 'result', messageId: 'm1', text: 'ab', data: { n: 2 } }),
      ev(5, { type: 'status', status: 'done', message: 'Finished' }),
      ev(6, { type: 'done', state: 'completed' }),
    ].join('');
    const { events, final } = map('edgestream', wire);
    expect(final).toBe(true);
    expect(types(events)).toEqual(['delta', 'delta', 'status', 'result']);
    expect(events.at(-1)).toEqual({ type: 'result', messageId: 'm1', text: 'ab', data: { n: 2 } });
    // A restart between the result and done: the held result is in the reader's state.
    const first = FORMATS.edgestream.create(settingsFor('edgestream'));
    for (const m of messages(wire).slice(0, 4)) first.read(m);
    const second = FORMATS.edgestream.create(settingsFor('edgestream'), JSON.parse(JSON.stringify(first.state!())));
    expect(second.read(messages(wire)[5]!)).toEqual({ events: [events.at(-1)], final: true });
  });

  it('a stream that ends without done is upstream_incomplete', () => {
    const wire = relayFixture('edgestream-plain').replace(/id: 12\n[\s\S]*$/, '');
    expect(map('edgestream', wire).error?.code).toBe('upstream_incomplete');
  });

  it('a known event without its fields is upstream_malformed', () => {
    expect(map('edgestream', 'event: delta\ndata: {"type":"delta","text":5}\n\n').error?.code).toBe('upstream_malformed');
  });

  it('a done that is not completed fails the run', () => {
    expect(map('edgestream', 'data: {"type":"done","state":"cancelled"}\n\n').error?.message).toContain('run_cancelled');
  });
});

describe('relay formats text and json (generic)', () => {
  it('text: each data is a delta, [DONE] ends with the whole text', () => {
    const { events, final } = map('text', relayFixture('text-plain'));
    expect(final).toBe(true);
    expect(text(events)).toBe('Hello from a text stream\u2014 \u00e9\u00e8 \u{1F600}');
    expect(events.at(-1)).toEqual({ type: 'result', messageId: 'm1', text: text(events) });
  });

  it('text: the end of the body ends the answer too', () => {
    expect(map('text', 'data: a\n\ndata: b\n\n').events.at(-1)).toEqual({ type: 'result', messageId: 'm1', text: 'ab' });
  });

  it('json: the text is read at the dotted field, chunks without it are dropped', () => {
    const { events, final } = map('json', relayFixture('json-plain'), { field: 'choices.0.delta.content' });
    expect(final).toBe(true);
    expect(types(events)).toEqual(['delta', 'delta', 'delta', 'delta', 'delta', 'result']);
    expect(events.at(-1)).toEqual({ type: 'result', messageId: 'm1', text: 'Tokens at a dotted path.' });
  });

  it('json: a message that is not JSON is upstream_malformed', () => {
    expect(map('json', 'data: {"token": \n\n', { field: 'token' }).error?.code).toBe('upstream_malformed');
  });

  it('event: error fails both', () => {
    expect(map('text', 'data: a\n\nevent: error\ndata: boom\n\n').error?.code).toBe('upstream_error');
    expect(map('json', 'event: error\ndata: {}\n\n', { field: 'x' }).error?.code).toBe('upstream_error');
  });

  it('valueAt follows objects and array indexes, and nothing inherited', () => {
    expect(valueAt({ a: [{ b: 'x' }] }, 'a.0.b')).toBe('x');
    expect(valueAt({ a: 1 }, 'a.b')).toBeUndefined();
    expect(valueAt({}, 'constructor')).toBeUndefined();
  });
});
