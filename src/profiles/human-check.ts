/**
 * A profile's human check for one start: a start ticket signed by the
 * embedding site's backend, and/or a Turnstile token verified with
 * siteverify. A retried POST of the same start sends the same evidence: a
 * ticket may be reused, and siteverify's idempotency key (derived from the
 * requestId) gives a repeated Turnstile token its first answer again.
 */
import type { Config } from '../config';
import { verifyTicket } from '../human/ticket';
import { verifyTurnstile } from '../human/turnstile';
import type { HumanCheck } from './profile';
import { turnstileIdempotencyKey } from '../human/turnstile';

export interface HumanEvidence {
  check: HumanCheck;
  ticket: string | undefined;
  turnstileToken: string | undefined;
  remoteIp: string | undefined;
  /** The run being started: retries of its start share one siteverify answer. */
  requestId: string;
}

export type HumanVerdict = { ok: true; sub?: string } | { ok: false; reason: string };

export async function checkHuman(evidence: HumanEvidence, profile: string, config: Config): Promise<HumanVerdict> {
  const { check, ticket, turnstileToken } = evidence;
  const wantsTicket = check === 'ticket' || check === 'either';
  const wantsTurnstile = check === 'turnstile' || check === 'either';
  const reasons: string[] = [];
  if (wantsTicket && ticket !== undefined && config.TICKET_SECRET) {
    const verdict = await verifyTicket(ticket, { secret: config.TICKET_SECRET, profile, nowMs: Date.now() });
    if (verdict.ok) return verdict.sub === undefined ? { ok: true } : { ok: true, sub: verdict.sub };
    reasons.push(verdict.reason);
  }
  if (wantsTurnstile && turnstileToken !== undefined && config.TURNSTILE_SECRET_KEY) {
    const verdict = await verifyTurnstile(turnstileToken, {
      secret: config.TURNSTILE_SECRET_KEY,
      url: config.TURNSTILE_VERIFY_URL,
      idempotencyKey: await turnstileIdempotencyKey(evidence.requestId, turnstileToken),
      ...(evidence.remoteIp ? { remoteIp: evidence.remoteIp } : {}),
    });
    if (verdict.ok) return { ok: true };
    reasons.push(verdict.reason);
  }
  if (reasons.length === 0) {
    const needed =
      check === 'ticket'
        ? 'a start ticket (`ticket`)'
        : check === 'turnstile'
          ? 'a Turnstile token (`turnstileToken`)'
          : 'a start ticket (`ticket`) or a Turnstile token (`turnstileToken`)';
    return { ok: false, reason: `agent "${profile}" needs ${needed} in the request body` };
  }
  return { ok: false, reason: reasons.join('; ') };
}
