// scripts/make-ticket.mjs (what embedding sites copy) stays in step with src/human/ticket.ts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signTicket, verifyTicket } from '../../src/human/ticket';
import { ROOT } from '../support/dev-server';

const SCRIPT = join(ROOT, 'scripts/make-ticket.mjs');
const SECRET = 'make-ticket-test-secret-0123456789abcdef';

/** `secret: null` runs it without TICKET_SECRET in the environment. */
function run(args: string[], secret: string | null = SECRET) {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  if (secret !== null) env.TICKET_SECRET = secret;
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scripts/make-ticket.mjs', () => {
  it('prints a ticket that verifyTicket accepts, naming the sub', async () => {
    const before = Date.now();
    const { code, stdout, stderr } = run(['--profile', 'docs', '--sub', 'user-42', '--ttl', '300']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\n$/);
    const ticket = stdout.trim();
    expect(await verifyTicket(ticket, { secret: SECRET, profile: 'docs', nowMs: Date.now() })).toEqual({ ok: true, sub: 'user-42' });
    const exp = JSON.parse(Buffer.from(ticket.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
    expect(exp).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 300);
    expect(exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 300);
    // Expired 300 s later; refused for another profile or secret.
    expect(await verifyTicket(ticket, { secret: SECRET, profile: 'docs', nowMs: exp * 1000 })).toEqual({
      ok: false,
      reason: 'the ticket has expired',
    });
    expect(await verifyTicket(ticket, { secret: SECRET, profile: 'support', nowMs: Date.now() })).toMatchObject({ ok: false });
    expect(await verifyTicket(ticket, { secret: `${SECRET}!`, profile: 'docs', nowMs: Date.now() })).toMatchObject({ ok: false });
  });

  it('makes byte for byte what signTicket makes', async () => {
    for (const sub of [undefined, 'user:42@example.com']) {
      const args = ['--profile', 'docs.v2_x-y', '--exp', '1800000000', ...(sub ? ['--sub', sub] : [])];
      const { code, stdout } = run(args);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe(await signTicket({ profile: 'docs.v2_x-y', expiresAt: 1_800_000_000, sub }, SECRET));
    }
  });

  it('defaults to a 300 s lifetime and without sub', async () => {
    const { stdout } = run(['--profile', 'docs']);
    const payload = JSON.parse(Buffer.from(stdout.trim().split('.')[1]!, 'base64url').toString('utf8'));
    expect(Object.keys(payload)).toEqual(['p', 'exp']);
    expect(payload.exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(295);
    expect(payload.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(300);
    expect(await verifyTicket(stdout.trim(), { secret: SECRET, profile: 'docs', nowMs: Date.now() })).toEqual({ ok: true });
  });

  it('accepts the longest lifetime the service accepts', async () => {
    const { code, stdout } = run(['--profile', 'docs', '--ttl', '3600']);
    expect(code).toBe(0);
    expect(await verifyTicket(stdout.trim(), { secret: SECRET, profile: 'docs', nowMs: Date.now() })).toEqual({ ok: true });
  });

  it('refuses what the service would refuse, printing no ticket', () => {
    const cases: [string[], string | null, RegExp][] = [
      [['--profile', 'docs'], null, /set TICKET_SECRET/],
      [['--profile', 'docs'], '', /set TICKET_SECRET/],
      [[], SECRET, /--profile is required/],
      [['--profile', 'has space'], SECRET, /--profile must match/],
      [['--profile', 'docs', '--sub', 'not ok'], SECRET, /--sub must match/],
      [['--profile', 'docs', '--ttl', '3601'], SECRET, /--ttl must be an integer from 1 to 3600/],
      [['--profile', 'docs', '--ttl', '0'], SECRET, /--ttl/],
      [['--profile', 'docs', '--ttl', '1.5'], SECRET, /--ttl/],
      [['--profile', 'docs', '--ttl', '-5'], SECRET, /--ttl/],
      [['--profile', 'docs', '--exp', 'soon'], SECRET, /--exp must be unix seconds/],
      [['--profile', 'docs', '--exp', '1800000000', '--ttl', '60'], SECRET, /not both/],
      [['--profile', 'docs', '--secret', 'x'], SECRET, /Unknown option '--secret'/],
      [['--profile', 'docs', 'extra'], SECRET, /Unexpected argument/],
    ];
    for (const [args, secret, message] of cases) {
      const r = run(args, secret);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).toContain('usage:');
    }
  });

  it('prints its usage with --help', () => {
    const r = run(['--help'], null);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: TICKET_SECRET=\.\.\. node scripts\/make-ticket\.mjs --profile NAME/);
  });
});
