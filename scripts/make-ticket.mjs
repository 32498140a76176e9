#!/usr/bin/env node
// Make an edgestream start ticket, as the embedding site's backend does.
// Dependency-free (Node >= 20, WebCrypto only): copy it, or port its ~15
// lines of signing to your backend's language.
//
//   TICKET_SECRET=... node scripts/make-ticket.mjs --profile docs [--sub user-42] [--ttl 300]
//
// Prints `v1.<payload>.<sig>`: payload = base64url(UTF-8 JSON {"p","exp","sub"?}),
// sig = base64url(HMAC-SHA256(TICKET_SECRET, "v1." + payload)), both unpadded.
// Send it as the `ticket` of POST /v1/runs. The service refuses a ticket
// that expired, that lives more than 3600 s from its own clock, or that
// names another profile. Keep in step with src/human/ticket.ts.
import { parseArgs } from 'node:util';

/** The service refuses longer-lived tickets (TICKET_MAX_LIFETIME_S). */
const MAX_TTL_S = 3600;
/** A page view's worth: short, so a leaked ticket is soon useless. */
const DEFAULT_TTL_S = 300;
const PROFILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const SUB = /^[A-Za-z0-9._:@-]{1,128}$/;

const USAGE = `usage: TICKET_SECRET=... node scripts/make-ticket.mjs --profile NAME [--sub USER_ID] [--ttl SECONDS | --exp UNIX_SECONDS]
  --profile  the profile (the request's "agent") the ticket lets a caller start
  --sub      the site's user id (${SUB.source}); limits then count per user, not per IP
  --ttl      lifetime in seconds, 1..${MAX_TTL_S} (default ${DEFAULT_TTL_S})
  --exp      the expiry as unix seconds, instead of --ttl`;

/** Sign claims exactly as src/human/ticket.ts's signTicket does. */
async function makeTicket({ profile, expiresAt, sub }, secret) {
  const json = { p: profile, exp: expiresAt };
  if (sub !== undefined) json.sub = sub;
  const signed = `v1.${base64url(new TextEncoder().encode(JSON.stringify(json)))}`;
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(signed)));
  return `${signed}.${base64url(sig)}`;
}

function base64url(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

function fail(message) {
  process.stderr.write(`make-ticket: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        profile: { type: 'string' },
        sub: { type: 'string' },
        ttl: { type: 'string' },
        exp: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err.message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  // From the environment, never an argument: arguments end up in shell history and `ps`.
  const secret = process.env.TICKET_SECRET;
  if (!secret) fail('set TICKET_SECRET (the secret this service is deployed with) in the environment');
  if (values.profile === undefined) fail('--profile is required');
  if (!PROFILE_NAME.test(values.profile)) fail(`--profile must match ${PROFILE_NAME.source}`);
  if (values.sub !== undefined && !SUB.test(values.sub)) fail(`--sub must match ${SUB.source}`);
  if (values.ttl !== undefined && values.exp !== undefined) fail('give --ttl or --exp, not both');

  let expiresAt;
  if (values.exp !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(values.exp) || !Number.isSafeInteger(Number(values.exp)))
      fail('--exp must be unix seconds (a positive integer)');
    expiresAt = Number(values.exp);
  } else {
    const ttl = values.ttl ?? String(DEFAULT_TTL_S);
    if (!/^[0-9]{1,5}$/.test(ttl) || Number(ttl) < 1 || Number(ttl) > MAX_TTL_S)
      fail(`--ttl must be an integer from 1 to ${MAX_TTL_S} (the service refuses longer-lived tickets)`);
    expiresAt = Math.floor(Date.now() / 1000) + Number(ttl);
  }
  process.stdout.write(`${await makeTicket({ profile: values.profile, expiresAt, sub: values.sub }, secret)}\n`);
}

await main();
