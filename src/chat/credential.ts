/**
 * A chat request's credential, read in the Worker (which holds API_KEYS and
 * TICKET_SECRET): `Authorization: Bearer <value>` (or `?token=` where a
 * browser EventSource reads) is an API key, a start ticket (`v1.` ...), or
 * else maybe the chat's token, which only the chat can tell.
 */
import type { Context } from 'hono';
import { callerOf } from '../auth';
import type { Config } from '../config';
import { verifyTicket } from '../human/ticket';
import type { ChatAuth } from './protocol';

const TICKET_SHAPE = /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * @param bodyTicket a `ticket` from the request body, where there is one
 * @returns what the chat checks, and whether anything was presented (a
 *   credential that opens nothing counts as a failed authentication)
 */
export async function chatAuthOf(
  c: Context,
  config: Config,
  allowQueryToken: boolean,
  bodyTicket?: string,
): Promise<{ auth: ChatAuth; presented: boolean }> {
  const caller = await callerOf(c, config, allowQueryToken);
  if (caller.apiKey) return { auth: { apiKey: true }, presented: true };
  const auth: ChatAuth = { apiKey: false };
  const bearer = caller.token;
  if (bearer !== undefined) auth.presented = true;
  const bearerIsTicket = bearer !== undefined && TICKET_SHAPE.test(bearer);
  if (bearer !== undefined && !bearerIsTicket) auth.token = bearer;
  for (const ticket of [bearerIsTicket ? bearer : undefined, bodyTicket]) {
    if (ticket === undefined || auth.ticket) continue;
    const opened = await ticketUser(ticket, config);
    if (opened) auth.ticket = opened;
  }
  return { auth, presented: bearer !== undefined };
}

/**
 * The profile and user a valid ticket names, or null (no TICKET_SECRET, not a
 * valid ticket, or no `sub`: only a ticket naming a user identifies a chat's owner).
 */
async function ticketUser(ticket: string, config: Config): Promise<{ profile: string; sub: string } | null> {
  if (!config.TICKET_SECRET || !TICKET_SHAPE.test(ticket)) return null;
  const profile = claimedProfile(ticket);
  if (profile === null) return null;
  // Fully verified (signature, expiry, lifetime) for the profile it claims; the chat checks that profile is its own.
  const verdict = await verifyTicket(ticket, { secret: config.TICKET_SECRET, profile, nowMs: Date.now() });
  return verdict.ok && verdict.sub !== undefined ? { profile, sub: verdict.sub } : null;
}

/** The `p` claim of a ticket's payload, unverified (verifyTicket checks it). */
function claimedProfile(ticket: string): string | null {
  try {
    const payload = ticket.split('.')[1]!;
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { p?: unknown };
    return typeof claims.p === 'string' ? claims.p : null;
  } catch {
    return null;
  }
}
