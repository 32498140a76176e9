/**
 * UsageObject: one Durable Object per counter key (`client:<clientKey>`, and
 * `deployment` for all anonymous clients together). It counts the runs going
 * at once (as leases that end by themselves, so a run whose release never
 * arrives frees its slot at its deadline) and the tokens and log rows used
 * per UTC day, and admits or refuses new runs against those. A running run
 * charges its usage so far as it goes (`charge`), and the rest when it ends
 * (`release`): both carry the run's totals, so the object adds only what it
 * has not counted for that run yet, and a repeated call adds nothing.
 *
 * One object serialises its own calls, so a check and the lease it records
 * happen with nothing in between (SQLite calls are synchronous). Storage
 * stays small: expired leases and past days are deleted on every call, and
 * an alarm deletes everything once the day is over and no lease is left.
 */
import { DurableObject } from 'cloudflare:workers';
import type { AppEnv } from '../env';

/** The answer to a start: admitted, or refused with what the client should be told. */
export type Admission = { ok: true } | { ok: false; code: 'rate_limited' | 'quota_exceeded'; message: string; retryAfterS: number };

/** Whose counters an object keeps: only the wording of refusals depends on it. */
export type UsageScope = 'client' | 'deployment';

export interface AdmitRequest {
  /** The run's requestId: admitting the same run again counts it once. */
  runId: string;
  /** Epoch ms when the lease ends by itself (the run's deadline). */
  leaseUntil: number;
  /** Leases held at once; 0 = no limit. */
  maxRunning: number;
  /** Tokens per UTC day; 0 = no limit. */
  tokensPerDay: number;
  /** Log rows per UTC day; 0 = no limit. */
  rowsPerDay: number;
  /** Epoch ms to judge by; defaults to the clock (tests cross midnight with it). */
  now?: number;
  /** Default `client`. */
  scope?: UsageScope;
}

export interface ReleaseRequest {
  runId: string;
  /** Model tokens the run used, in all. */
  tokens: number;
  /** SQLite log rows the run wrote, in all. */
  rows: number;
  /** Epoch ms; defaults to the clock. What was not charged yet counts for this UTC day. */
  now?: number;
}

/** A running run's usage so far, and the budgets to judge today's usage by. */
export interface ChargeRequest {
  runId: string;
  /** Model tokens the run used so far, in all (not since its last charge). */
  tokens: number;
  /** SQLite log rows the run wrote so far, in all. */
  rows: number;
  /** Tokens per UTC day; 0 = no limit. */
  tokensPerDay: number;
  /** Log rows per UTC day; 0 = no limit. */
  rowsPerDay: number;
  /** Epoch ms; defaults to the clock. What was not charged yet counts for this UTC day. */
  now?: number;
  /** Default `client`. */
  scope?: UsageScope;
}

/** What an object counts right now (for tests and diagnostics). */
export interface UsageSnapshot {
  running: number;
  tokens: number;
  rows: number;
}

const DAY_MS = 86_400_000;

/**
 * The longest Retry-After for a client at its running-runs limit. Its
 * earliest lease ends at that run's deadline (up to MAX_RUN_SECONDS), but
 * runs mostly end long before it, in seconds to minutes; waiting for the
 * deadline would keep a client out for an hour when a slot is free in a
 * minute. A client that retries too soon is just told to wait again.
 */
export const RUNNING_RETRY_AFTER_MAX_S = 30;

/**
 * Released run ids kept per object (each a few dozen bytes), so that a
 * repeated release adds nothing. Beyond this many in one day the oldest are
 * forgotten: a release repeated after 10,000 later runs is not a retry, and
 * counting it twice errs on the safe side.
 */
export const MAX_RELEASED_IDS = 10_000;

/**
 * What a running run has been charged so far is kept while it holds its
 * lease, and this long after its last charge (so the release of a run ended
 * at its deadline, just after its lease, adds only the rest). A run whose
 * release comes later than that is counted in full again: on the safe side.
 */
export const CHARGED_KEEP_MS = 86_400_000;

export class UsageObject extends DurableObject<AppEnv> {
  /** Whether this isolate has made sure the tables exist. */
  #ready = false;
  /** The alarm this isolate last set; null = unknown (set it on the next write). */
  #alarmAt: number | null = null;

  // ---- entry points ------------------------------------------------------

  /**
   * Admit a run, or say why not. Budgets are checked before the running
   * limit: a client out of budget for the day should not be told to retry
   * in seconds. A run already holding a lease is admitted again without
   * counting twice (its lease is extended if the new one ends later).
   */
  async admit(req: AdmitRequest): Promise<Admission> {
    const now = req.now ?? Date.now();
    const scope = req.scope ?? 'client';
    const sql = this.#sql();
    this.#prune(now);
    const held = sql.exec<{ until: number }>('SELECT until FROM lease WHERE run_id = ?', req.runId).toArray()[0];
    if (held) {
      if (req.leaseUntil > held.until) {
        sql.exec('UPDATE lease SET until = ? WHERE run_id = ?', req.leaseUntil, req.runId);
        await this.#scheduleAlarm();
      }
      return { ok: true };
    }
    const refusal = this.#overBudget(req, scope, now) ?? this.#overRunning(req, scope, now);
    if (refusal) return refusal;
    sql.exec('INSERT INTO lease (run_id, until) VALUES (?, ?)', req.runId, req.leaseUntil);
    // Admitted anew (e.g. the start is retried after the other counter refused
    // it): its next release must count again.
    sql.exec('DELETE FROM released WHERE run_id = ?', req.runId);
    await this.#scheduleAlarm();
    return { ok: true };
  }

  /**
   * A run ended: drop its lease and add its usage to today's counters. A
   * repeated release of the same run adds nothing. A release whose lease
   * already expired still counts its usage: the run did use it.
   */
  async release(req: ReleaseRequest): Promise<void> {
    const now = req.now ?? Date.now();
    const sql = this.#sql();
    this.#prune(now);
    if (sql.exec('SELECT 1 FROM released WHERE run_id = ?', req.runId).toArray().length > 0) return;
    const day = utcDay(now);
    const charged = this.#charged(req.runId);
    sql.exec('DELETE FROM lease WHERE run_id = ?', req.runId);
    sql.exec('DELETE FROM charged WHERE run_id = ?', req.runId);
    sql.exec('INSERT INTO released (run_id, day) VALUES (?, ?)', req.runId, day);
    // Rowids only grow, so the oldest are the smallest: keeps at most MAX_RELEASED_IDS.
    sql.exec('DELETE FROM released WHERE rowid <= (SELECT max(rowid) FROM released) - ?', MAX_RELEASED_IDS);
    // Only what the run's charges have not counted yet (never less: a total
    // lower than what was charged refunds nothing).
    this.#addUsage(day, count(req.tokens) - charged.tokens, count(req.rows) - charged.rows);
    await this.#scheduleAlarm();
  }

  /**
   * A running run's usage so far: adds to today's counters what this run has
   * not been charged yet, then says whether a budget is now used up (the run
   * should end) or not. Carries totals, not increments, so a retried or
   * late charge adds nothing twice, and a smaller total than one already
   * counted adds nothing. A run already released adds nothing either.
   */
  async charge(req: ChargeRequest): Promise<Admission> {
    const now = req.now ?? Date.now();
    const sql = this.#sql();
    this.#prune(now);
    if (sql.exec('SELECT 1 FROM released WHERE run_id = ?', req.runId).toArray().length === 0) {
      const charged = this.#charged(req.runId);
      const tokens = Math.max(charged.tokens, count(req.tokens));
      const rows = Math.max(charged.rows, count(req.rows));
      sql.exec(
        `INSERT INTO charged (run_id, tokens, log_rows, at) VALUES (?, ?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET tokens = excluded.tokens, log_rows = excluded.log_rows, at = excluded.at`,
        req.runId,
        tokens,
        rows,
        now,
      );
      this.#addUsage(utcDay(now), tokens - charged.tokens, rows - charged.rows);
      await this.#scheduleAlarm();
    }
    return this.#overBudget(req, req.scope ?? 'client', now) ?? { ok: true };
  }

  /** Unexpired leases and today's usage. Reads only: an unused object stays empty. */
  async snapshot(now: number = Date.now()): Promise<UsageSnapshot> {
    if (!this.#tablesExist()) return { running: 0, tokens: 0, rows: 0 };
    const sql = this.ctx.storage.sql;
    const running = sql.exec<{ n: number }>('SELECT count(*) AS n FROM lease WHERE until > ?', now).one().n;
    const today = this.#today(utcDay(now));
    return { running, ...today };
  }

  /** Deletes the object's storage once nothing in it matters any more; else comes back later. */
  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    if (!this.#tablesExist()) return;
    const sql = this.#sql();
    this.#prune(Date.now());
    const left = sql
      .exec<{ n: number }>(
        'SELECT (SELECT count(*) FROM lease) + (SELECT count(*) FROM usage) + (SELECT count(*) FROM released) + (SELECT count(*) FROM charged) AS n',
      )
      .one().n;
    if (left > 0) {
      await this.#scheduleAlarm();
      return;
    }
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.#ready = false;
  }

  // ---- internals ---------------------------------------------------------

  /** The SQL handle, with the tables made on first use (never for reads: see snapshot). */
  #sql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    if (!this.#ready) {
      sql.exec(`CREATE TABLE IF NOT EXISTS lease (run_id TEXT PRIMARY KEY, until INTEGER NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS released (run_id TEXT PRIMARY KEY, day INTEGER NOT NULL)`);
      sql.exec(
        `CREATE TABLE IF NOT EXISTS usage (
           day      INTEGER PRIMARY KEY,
           tokens   INTEGER NOT NULL,
           log_rows INTEGER NOT NULL
         )`,
      );
      // What each running run has been charged so far (its totals at its last charge).
      sql.exec(
        `CREATE TABLE IF NOT EXISTS charged (
           run_id   TEXT PRIMARY KEY,
           tokens   INTEGER NOT NULL,
           log_rows INTEGER NOT NULL,
           at       INTEGER NOT NULL
         )`,
      );
      this.#ready = true;
    }
    return sql;
  }

  #tablesExist(): boolean {
    if (this.#ready) return true;
    return this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lease'").toArray().length > 0;
  }

  /** Forget expired leases, every day before today's, and charges of runs long gone. */
  #prune(now: number): void {
    const sql = this.#sql();
    const day = utcDay(now);
    sql.exec('DELETE FROM lease WHERE until <= ?', now);
    sql.exec('DELETE FROM usage WHERE day < ?', day);
    sql.exec('DELETE FROM released WHERE day < ?', day);
    sql.exec('DELETE FROM charged WHERE at <= ? AND run_id NOT IN (SELECT run_id FROM lease)', now - CHARGED_KEEP_MS);
  }

  /** What a run has been charged so far (zeros when nothing). */
  #charged(runId: string): { tokens: number; rows: number } {
    const row = this.#sql()
      .exec<{ tokens: number; log_rows: number }>('SELECT tokens, log_rows FROM charged WHERE run_id = ?', runId)
      .toArray()[0];
    return { tokens: row?.tokens ?? 0, rows: row?.log_rows ?? 0 };
  }

  /** Add usage to a day's counters; negative parts count as 0. */
  #addUsage(day: number, tokens: number, rows: number): void {
    const t = Math.max(0, tokens);
    const r = Math.max(0, rows);
    if (t === 0 && r === 0) return;
    this.#sql().exec(
      `INSERT INTO usage (day, tokens, log_rows) VALUES (?, ?, ?)
       ON CONFLICT (day) DO UPDATE SET tokens = tokens + excluded.tokens, log_rows = log_rows + excluded.log_rows`,
      day,
      t,
      r,
    );
  }

  #today(day: number): { tokens: number; rows: number } {
    const row = this.#sql()
      .exec<{ tokens: number; log_rows: number }>('SELECT tokens, log_rows FROM usage WHERE day = ?', day)
      .toArray()[0];
    return { tokens: row?.tokens ?? 0, rows: row?.log_rows ?? 0 };
  }

  #overBudget(req: Pick<AdmitRequest, 'tokensPerDay' | 'rowsPerDay'>, scope: UsageScope, now: number): Admission | null {
    const used = this.#today(utcDay(now));
    const what =
      req.tokensPerDay > 0 && used.tokens >= req.tokensPerDay
        ? 'model token'
        : req.rowsPerDay > 0 && used.rows >= req.rowsPerDay
          ? 'event storage'
          : null;
    if (!what) return null;
    const retryAfterS = Math.max(1, Math.ceil(((utcDay(now) + 1) * DAY_MS - now) / 1000));
    const who = scope === 'client' ? 'this client has' : 'this service has';
    const forWhom = scope === 'client' ? '' : ' for anonymous use';
    return {
      ok: false,
      code: 'quota_exceeded',
      message: `${who} used its daily ${what} budget${forWhom}; retry after midnight UTC, in ${retryAfterS} s`,
      retryAfterS,
    };
  }

  #overRunning(req: AdmitRequest, scope: UsageScope, now: number): Admission | null {
    if (req.maxRunning <= 0) return null;
    const { n, first } = this.#sql()
      .exec<{ n: number; first: number | null }>('SELECT count(*) AS n, min(until) AS first FROM lease WHERE until > ?', now)
      .one();
    if (n < req.maxRunning) return null;
    const untilFirst = Math.ceil(((first ?? now) - now) / 1000);
    const retryAfterS = Math.min(RUNNING_RETRY_AFTER_MAX_S, Math.max(1, untilFirst));
    const who = scope === 'client' ? 'this client has as many runs' : 'this service has as many anonymous runs';
    return {
      ok: false,
      code: 'rate_limited',
      message: `${who} going at once as it may; retry when one has ended, in ${retryAfterS} s`,
      retryAfterS,
    };
  }

  /**
   * The alarm goes at the next UTC midnight by the clock, or when the last
   * lease ends if later: the first moment everything stored could be stale.
   * Always the real clock, never a request's `now`: an alarm in the past
   * would fire at once and delete what a test has just written.
   */
  async #scheduleAlarm(): Promise<void> {
    const clock = Date.now();
    const lastLease = this.#sql().exec<{ last: number | null }>('SELECT max(until) AS last FROM lease').one().last ?? 0;
    const at = Math.max((utcDay(clock) + 1) * DAY_MS, lastLease);
    if (this.#alarmAt !== null && this.#alarmAt >= at) return;
    await this.ctx.storage.setAlarm(at);
    this.#alarmAt = at;
  }
}

/** Days since the epoch, UTC. */
function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** A usage figure as a whole non-negative number (a bad one counts as 0 rather than poisoning a sum). */
function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
