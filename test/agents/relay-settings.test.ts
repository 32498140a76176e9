// A relay profile's own keys, judged when PROFILES is read: every mistake
// named by its field, and the body template filled at run time.
import { describe, expect, it } from 'vitest';
import { fillTemplate } from '../../src/agents/relay/settings';
import { parseProfiles } from '../../src/profiles/profile';

const parse = (relay: object) => parseProfiles(JSON.stringify({ r: { agent: 'relay', ...relay } }), 3600);

describe('relay settings in PROFILES', () => {
  it('fills in the defaults: POST, no headers, resume on', () => {
    const { profiles, issues } = parse({ url: 'http://127.0.0.1:8080/AutoAgent', format: 'genie' });
    expect(issues).toEqual([]);
    expect(profiles[0]!.settings).toEqual({
      url: 'http://127.0.0.1:8080/AutoAgent',
      method: 'POST',
      headers: {},
      format: 'genie',
      resume: true,
    });
  });

  it('keeps headers with secret references (never a value), a body template, GET and an idle timeout', () => {
    const { profiles, issues } = parse({
      url: 'https://search.internal/v1/tool/deepsearch?x=1',
      format: 'deepsearch',
      headers: { Authorization: 'secret:DEEPSEARCH_TOKEN', 'X-Tenant': 'docs' },
      body: { request_id: '{{requestId}}', query: 'Q: {{query}}', history: '{{messages}}', stream: true },
      idleTimeoutMs: 30000,
    });
    expect(issues).toEqual([]);
    expect(profiles[0]!.settings).toMatchObject({ headers: { Authorization: 'secret:DEEPSEARCH_TOKEN' }, idleTimeoutMs: 30000 });
    expect(parse({ url: 'http://a.test/s', method: 'GET', format: 'text' }).issues).toEqual([]);
  });

  it.each([
    [{ format: 'genie' }, 'PROFILES.r.url: must be an http(s) URL'],
    [{ url: 'ftp://a.test/x', format: 'genie' }, 'PROFILES.r.url: must be an http(s) URL'],
    [{ url: 'http://user:pw@a.test/x', format: 'genie' }, 'PROFILES.r.url: must not contain credentials'],
    [{ url: 'http://a.test/x' }, 'PROFILES.r.format: is required: one of edgestream, ai-sdk, genie, deepsearch, text, json'],
    [{ url: 'http://a.test/x', format: 'sse' }, 'PROFILES.r.format: is required: one of'],
    [{ url: 'http://a.test/x', format: 'text', method: 'PUT' }, 'PROFILES.r.method: must be "POST" or "GET"'],
    [
      { url: 'http://a.test/x', format: 'text', headers: { 'Bad Header': 'x' } },
      'PROFILES.r.headers.Bad Header: is not a valid header name',
    ],
    [
      { url: 'http://a.test/x', format: 'text', headers: { 'Last-Event-ID': '1' } },
      'PROFILES.r.headers.Last-Event-ID: is set by the relay itself',
    ],
    [
      { url: 'http://a.test/x', format: 'text', headers: { Authorization: 'secret:' } },
      'PROFILES.r.headers.Authorization: "secret:NAME" needs a variable name',
    ],
    [{ url: 'http://a.test/x', format: 'text', headers: { X: 'a\nb' } }, 'PROFILES.r.headers.X: must be one line'],
    [
      { url: 'http://a.test/x', format: 'text', headers: { Authorization: 'Bearer sk-live' } },
      'PROFILES.r.headers.Authorization: carries credentials: use "secret:NAME"',
    ],
    [{ url: 'http://a.test/x', format: 'text', headers: { X: 5 } }, 'PROFILES.r.headers.X: header values are strings'],
    [{ url: 'http://a.test/x', format: 'text', body: { q: '{{question}}' } }, 'PROFILES.r.body.q: unknown placeholder {{question}}'],
    [{ url: 'http://a.test/x', format: 'text', body: { m: ['ctx: {{messages}}'] } }, 'PROFILES.r.body.m.0: {{messages}} is an array'],
    [{ url: 'http://a.test/x', format: 'json' }, 'PROFILES.r.field: is required with format "json"'],
    [{ url: 'http://a.test/x', format: 'text', field: 'a' }, 'PROFILES.r.field: applies only to format "json"'],
    [{ url: 'http://a.test/x', format: 'json', field: 'a..b' }, 'PROFILES.r.field: must be a dotted path'],
    [{ url: 'http://a.test/x', format: 'text', method: 'GET', body: {} }, 'PROFILES.r.body: a GET request has no body'],
    [{ url: 'http://a.test/x', format: 'text', idleTimeoutMs: 0 }, 'PROFILES.r.idleTimeoutMs: must be at least 1'],
    [{ url: 'http://a.test/x', format: 'text', resume: 'yes' }, 'PROFILES.r.resume: must be true or false'],
    [{ url: 'http://a.test/x', format: 'text', timeout: 5 }, 'PROFILES.r.timeout: not a profile key of the relay agent'],
    [{ url: 'http://a.test/x', format: 'text', model: 'gpt' }, 'PROFILES.r.model: the relay agent has no model'],
  ])('%j is refused: %s', (relay, message) => {
    const { issues } = parse(relay);
    expect(
      issues.some((i) => i.startsWith(message)),
      issues.join('\n'),
    ).toBe(true);
  });

  it('reports every mistake at once', () => {
    const { issues } = parse({ url: 'nope', format: 'x', method: 'PUT' });
    expect(issues.map((i) => i.split(':')[0])).toEqual(
      expect.arrayContaining(['PROFILES.r.url', 'PROFILES.r.format', 'PROFILES.r.method']),
    );
  });

  it('leaves no option open to clients', () => {
    expect(parse({ url: 'http://a.test/x', format: 'text', clientOptions: ['url'] }).issues).toEqual([
      'PROFILES.r.clientOptions: "url" is not an option of the relay agent',
    ]);
  });
});

describe('relay body template', () => {
  const values = { query: 'How?', requestId: 'run-1', messages: [{ role: 'user', content: 'hi' }] };

  it('replaces whole-string placeholders by their values, {{messages}} by the array', () => {
    expect(fillTemplate({ query: '{{query}}', requestId: '{{requestId}}', messages: '{{messages}}' }, values)).toEqual(values);
  });

  it('fills placeholders inside longer strings and nested values, and leaves the rest alone', () => {
    expect(fillTemplate({ a: ['Q: {{query}} ({{ requestId }})', 7, null, { b: true }], agentType: 5 }, values)).toEqual({
      a: ['Q: How? (run-1)', 7, null, { b: true }],
      agentType: 5,
    });
  });

  it('inserts a query holding braces or quotes as plain text', () => {
    expect(fillTemplate({ q: 'say {{query}}' }, { ...values, query: '{{requestId}} "$&"' })).toEqual({ q: 'say {{requestId}} "$&"' });
  });
});
