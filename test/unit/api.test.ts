import { describe, expect, it } from 'vitest';
import { call, createRun, postRun, readEventsResponse } from './helpers';

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack traces
  return body.error;
}

describe('POST /v1/runs validation', () => {
  it('starts a run and answers 201 with id, token, state and absolute links', async () => {
    const res = await postRun({ query: 'hi', options: { tokens: 2, delayMs: 0 } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.requestId).toMatch(/^run_[A-Za-z0-9_-]{20,}$/);
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.state).toBe('running');
    expect(body.links).toEqual({
      events: `https://edgestream.test/v1/runs/${body.requestId}/events`,
      status: `https://edgestream.test/v1/runs/${body.requestId}`,
      cancel: `https://edgestream.test/v1/runs/${body.requestId}/cancel`,
    });
  });

  it('makes a different unguessable requestId and token for every run', async () => {
    const a = await createRun({ query: 'a', options: { tokens: 1, delayMs: 0 } });
    const b = await createRun({ query: 'a', options: { tokens: 1, delayMs: 0 } });
    expect(a.requestId).not.toBe(b.requestId);
    expect(a.token).not.toBe(b.token);
  });

  it('rejects malformed JSON with invalid_json', async () => {
    await expectError(await postRun('{"query": '), 400, 'invalid_json');
    await expectError(await postRun(''), 400, 'invalid_json');
  });

  it('rejects a missing or empty query with invalid_request and lists the issues', async () => {
    const err = (await expectError(await postRun({}), 400, 'invalid_request')) as any;
    expect(err.message).toBe('query: Required'); // the contract's own example
    expect(err.issues[0].path).toEqual(['query']);
    await expectError(await postRun({ query: '' }), 400, 'invalid_request');
    await expectError(await postRun({ query: 'x'.repeat(16_001) }), 400, 'invalid_request');
    await expectError(await postRun([1, 2]), 400, 'invalid_request');
  });

  it('rejects a requestId outside the allowed pattern', async () => {
    for (const requestId of ['', 'has space', 'a/b', 'x'.repeat(129), 'é']) {
      await expectError(await postRun({ query: 'q', requestId }), 400, 'invalid_request');
    }
  });

  it('rejects bad messages and bad agent options with their path', async () => {
    await expectError(await postRun({ query: 'q', messages: [{ role: 'robot', content: 'x' }] }), 400, 'invalid_request');
    const err = (await expectError(await postRun({ query: 'q', options: { tokens: 0 } }), 400, 'invalid_request')) as any;
    expect(err.issues[0].path).toEqual(['options', 'tokens']);
    await expectError(await postRun({ query: 'q', options: { delayMs: 10_001 } }), 400, 'invalid_request');
    await expectError(await postRun({ query: 'q', options: { failAfter: 0 } }), 400, 'invalid_request');
    await expectError(await postRun({ query: 'q', options: { nope: true } }), 400, 'invalid_request');
  });

  it('rejects an option named __proto__ by name instead of dropping it (runs and chat turns)', async () => {
    const raw = (body: string, path = '/v1/runs') => call(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const requestId = `proto-${crypto.randomUUID()}`;
    for (const options of ['{"__proto__":{"tokens":1}}', '{"tokens":1,"__proto__":{}}', '{"__proto__":null}']) {
      const err = (await expectError(
        await raw(`{"query":"q","requestId":"${requestId}","options":${options}}`),
        400,
        'invalid_request',
      )) as any;
      expect(err.issues).toEqual([{ path: ['options', '__proto__'], message: expect.stringContaining('__proto__') }]);
      expect(err.message).toContain('options.__proto__');
    }
    expect((await call(`/v1/runs/${requestId}`, { headers: { Authorization: 'Bearer x' } })).status).toBe(404);
    const chatErr = (await expectError(
      await raw('{"text":"hi","options":{"__proto__":{"tokens":1}}}', '/v1/chat/proto-chat-0123456789abcdef/messages'),
      400,
      'invalid_request',
    )) as any;
    expect(chatErr.message).toContain('options.__proto__');
  });

  it('rejects an unknown agent and names the available ones', async () => {
    const err = await expectError(await postRun({ query: 'q', agent: 'nope' }), 400, 'unknown_agent');
    expect(err.message).toMatch(/demo/);
    expect(err.message).not.toMatch(/PROFILES/);
    // An agent kind that exists only through profiles says so.
    for (const kind of ['relay', 'external']) {
      const asked = await expectError(await postRun({ query: 'q', agent: kind }), 400, 'unknown_agent');
      expect(asked.message).toContain(`"${kind}" runs only through a profile the deployer defines in PROFILES`);
    }
    // Any string that names no agent is unknown, however odd.
    await expectError(await postRun({ query: 'q', agent: '' }), 400, 'unknown_agent');
    const long = await expectError(await postRun({ query: 'q', agent: 'x'.repeat(5000) }), 400, 'unknown_agent');
    expect(long.message.length).toBeLessThan(300);
    await expectError(await postRun({ query: 'q', agent: 7 }), 400, 'invalid_request');
  });

  it('takes a long conversation in messages (bounded only by the body limit)', async () => {
    const messages = Array.from({ length: 500 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` }));
    const res = await postRun({ query: 'q', messages, options: { tokens: 1, delayMs: 0 } });
    expect(res.status).toBe(201);
    // One message as long as the body allows (v1 bounds content by the body only).
    const long = await postRun({
      query: 'q',
      messages: [{ role: 'user', content: 'x'.repeat(65_000) }],
      options: { tokens: 1, delayMs: 0 },
    });
    expect(long.status).toBe(201);
  });

  it('rejects a body that is not JSON by media type', async () => {
    const res = await call('/v1/runs', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"query":"x"}' });
    await expectError(res, 415, 'unsupported_media_type');
    const none = await call('/v1/runs', { method: 'POST', body: '{"query":"x"}' });
    await expectError(none, 415, 'unsupported_media_type');
  });

  it('rejects a body over 64 KiB with payload_too_large', async () => {
    const res = await postRun({ query: 'q', messages: [{ role: 'user', content: 'x'.repeat(64 * 1024) }] });
    await expectError(res, 413, 'payload_too_large');
  });

  it('accepts application/json with a charset', async () => {
    const res = await postRun({ query: 'q', options: { tokens: 1, delayMs: 0 } }, { 'Content-Type': 'application/json; charset=utf-8' });
    expect(res.status).toBe(201);
  });
});

describe('routing errors', () => {
  it('answers unknown API paths with not_found', async () => {
    await expectError(await call('/v1/nope'), 404, 'not_found');
    await expectError(await call('/v1/runs/a/b/c'), 404, 'not_found');
  });

  it('answers wrong methods with method_not_allowed and an Allow header', async () => {
    const res = await call('/v1/runs');
    expect(res.headers.get('Allow')).toMatch(/POST/);
    await expectError(res, 405, 'method_not_allowed');
    await expectError(await call('/v1/runs/x/events', { method: 'PUT' }), 405, 'method_not_allowed');
    await expectError(await call('/v1/runs/x/cancel'), 405, 'method_not_allowed');
    await expectError(await call('/v1/runs/x', { method: 'DELETE' }), 405, 'method_not_allowed');
    await expectError(await call('/v1/agents', { method: 'POST' }), 405, 'method_not_allowed');
  });

  it('answers OPTIONS with 204 and the Allow header when CORS is off', async () => {
    const res = await call('/v1/runs/x/events', { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('Allow')).toBe('GET, HEAD, POST, OPTIONS');
    expect((await call('/v1/runs', { method: 'OPTIONS' })).headers.get('Allow')).toBe('POST, OPTIONS');
  });
});

describe('run access', () => {
  it('answers run_not_found for an unknown run, a wrong token or no token, alike', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1, delayMs: 0 } });
    const wrong = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const answers = [
      await readEventsResponse('run_unknown', token),
      await readEventsResponse(requestId, wrong),
      await call(`/v1/runs/${requestId}/events`),
      await call(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${wrong}` } }),
      await call(`/v1/runs/${requestId}`),
      await call(`/v1/runs/${requestId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${wrong}` } }),
      await call(`/v1/runs/bad%20id/events?token=${token}`),
    ];
    const bodies = [];
    for (const res of answers) bodies.push(await expectError(res, 404, 'run_not_found'));
    expect(new Set(bodies.map((b) => b.message)).size).toBe(1); // nothing tells them apart
  });

  it('answers run_not_found, never a 500, for a ?token= no header could carry', async () => {
    const { requestId } = await createRun({ query: 'q', options: { tokens: 1, delayMs: 0 } });
    for (const token of ['%00', 'a%0Ab', 'a%0D%0Ab', '%C3%A9', 'x'.repeat(4000), '']) {
      await expectError(await call(`/v1/runs/${requestId}/events?token=${token}`), 404, 'run_not_found');
      await expectError(await call(`/v1/runs/${requestId}?token=${token}`), 404, 'run_not_found');
    }
  });

  it('answers HEAD on the stream with its headers and no body, closing the reader', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1, delayMs: 0 } });
    const res = await call(`/v1/runs/${requestId}/events`, { method: 'HEAD', headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/event-stream; charset=utf-8');
    expect(await res.text()).toBe('');
  });

  it('accepts the token as ?token= for EventSource', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1, delayMs: 0 } });
    const res = await call(`/v1/runs/${requestId}?token=${encodeURIComponent(token)}`);
    expect(res.status).toBe(200);
  });

  it('rejects a Last-Event-ID that is not a decimal integer >= 0', async () => {
    const { requestId, token } = await createRun({ query: 'q', options: { tokens: 1, delayMs: 0 } });
    for (const bad of ['-1', 'abc', '1.5', '1e3', '0x10', '9'.repeat(16), ' ']) {
      await expectError(await readEventsResponse(requestId, token, bad), 400, 'invalid_last_event_id');
    }
    const viaQuery = await call(`/v1/runs/${requestId}/events?token=${token}&lastEventId=x`);
    await expectError(viaQuery, 400, 'invalid_last_event_id');
  });
});

describe('GET /v1/agents', () => {
  it('lists the demo agent as the default', async () => {
    const res = await call('/v1/agents');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { agents: { name: string; description: string; default: boolean }[] };
    const demo = body.agents.find((a) => a.name === 'demo');
    expect(demo).toMatchObject({ default: true });
    expect(demo!.description.length).toBeGreaterThan(0);
    expect(body.agents.filter((a) => a.default)).toHaveLength(1);
  });
});
