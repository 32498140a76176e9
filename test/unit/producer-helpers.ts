/**
 * Helpers for the external-producer tests: a deployment with an API key and
 * an external profile (passed per call: they reach the Worker, which puts
 * the profile's settings into the run's input), create, append, read.
 */
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import worker from '../../src/index';
import { BASE, readSse, type ParsedEvent } from './helpers';

export const KEY = 'producer-test-key-0123456789';
export const AS_KEY = { Authorization: `Bearer ${KEY}` } as const;
export const PROFILES = {
  demo: { agent: 'demo', default: true },
  feed: { agent: 'external', leaseSeconds: 60 },
};
export const VARS: Record<string, string> = { API_KEYS: KEY, PROFILES: JSON.stringify(PROFILES) };

export const stubFor = (requestId: string) => env.RUNS.get(env.RUNS.idFromName(requestId));

export async function callWith(vars: Record<string, string>, path: string, init: RequestInit = {}): Promise<Response> {
  return worker.fetch(new Request(`${BASE}${path}`, init), { ...env, ...vars }, createExecutionContext());
}

export const callAs = (path: string, init: RequestInit = {}) => callWith(VARS, path, init);

/** Create an external run as the backend; its requestId and token. */
export async function createFeed(body: Record<string, unknown> = {}): Promise<{ requestId: string; token: string }> {
  const res = await callAs('/v1/runs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...AS_KEY },
    body: JSON.stringify({ query: 'fed from outside', agent: 'feed', ...body }),
  });
  if (res.status !== 201) throw new Error(`expected 201, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as { requestId: string; token: string };
}

export interface Producer {
  id: string;
  epoch: number;
  seq: number;
}

/** `POST /v1/runs/{id}/events` with producer headers (as the backend unless `headers` say otherwise). */
export function append(requestId: string, producer: Producer, events: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return callAs(`/v1/runs/${requestId}/events`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...AS_KEY,
      'Producer-Id': producer.id,
      'Producer-Epoch': String(producer.epoch),
      'Producer-Seq': String(producer.seq),
      ...headers,
    },
    body: typeof events === 'string' ? events : JSON.stringify(events),
  });
}

/** An append that must succeed: its answer. */
export async function appendOk(requestId: string, producer: Producer, events: unknown): Promise<Record<string, any>> {
  const res = await append(requestId, producer, events);
  if (res.status !== 200) throw new Error(`append: expected 200, got ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, any>;
}

export const delta = (text: string, messageId = 'm1') => ({ type: 'delta', messageId, text });

export async function errorOf(res: Response): Promise<Record<string, any>> {
  return ((await res.json()) as { error: Record<string, any> }).error;
}

export function eventsResponse(requestId: string, token: string, lastEventId?: number): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);
  return callAs(`/v1/runs/${requestId}/events`, { headers });
}

export async function readFeed(requestId: string, token: string, lastEventId?: number): Promise<ParsedEvent[]> {
  const res = await eventsResponse(requestId, token, lastEventId);
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}`);
  return (await readSse(res)).events;
}

export async function statusOf(requestId: string, token: string): Promise<Record<string, any>> {
  return (await (await callAs(`/v1/runs/${requestId}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as Record<string, any>;
}
