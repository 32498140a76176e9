/**
 * The bench's printed report: every figure, its ratio to the bare Worker
 * and to the floor (the Durable Object hop with no storage), and PASS/MISS
 * per target (issue 12's, plus the earlier ones).
 */
import { N_CONCURRENT, EVENTS_PER_CONCURRENT, READERS_RUN } from './cases.mjs';

const fmt = (n, d = 1) => (n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d));
const ratio = (x, y) => (y ? x / y : Number.NaN);
const x = (r) => (Number.isNaN(r) ? '' : `${fmt(r, 2)}x`);
const row = (cells, widths) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[0]) : String(c).padStart(widths[i]))).join(' ');
const verdict = (name, ok, figure) => `  ${ok ? 'PASS' : 'MISS'}  ${name}${figure ? ` (${figure})` : ''}`;

export function report(r, { median, pct }) {
  const s = r.shared;
  const NAMES = ['service', 'bare', 'floor', 'floor-fetch'];
  const widths = [42, 11, 11, 11, 11, 9, 9];
  const summary = Object.fromEntries(
    NAMES.map((n) => {
      const t = s[n];
      const cc = t.concurrent;
      return [
        n,
        {
          ttfeP50: median(t.ttfe),
          ttfeP99: pct(t.ttfe, 99),
          throughput: median(t.throughput),
          concurrent: median(cc.map((c) => c.eventsPerSec)),
          errors: cc.reduce((a, c) => a + c.errors, 0),
          peakMiB: Math.max(...cc.map((c) => c.peakMiB)),
          lagP50: t.lags.length ? median(t.lags) : null,
          lagP99: t.lags.length ? pct(t.lags, 99) : null,
        },
      ];
    }),
  );
  const sv = summary.service;
  const line = (label, key, d, { ratios = true } = {}) =>
    row(
      [
        label,
        ...NAMES.map((n) => fmt(summary[n][key], d)),
        ratios ? x(ratio(sv[key], summary.bare[key])) : '',
        ratios ? x(ratio(sv[key], summary.floor[key])) : '',
      ],
      widths,
    );
  /** A figure in the service's column with its ratios (the first-event variants). */
  const serviceOnly = (label, v) =>
    row([label, fmt(v, 2), '', '', '', x(ratio(v, summary.bare.ttfeP50)), x(ratio(v, summary.floor.ttfeP50))], widths);
  const k = r.keyed;
  const readersOf = (n) => k.readers.find((x) => x.count === n);
  const r1000 = readersOf(1000);
  const replaySizes = Object.keys(k.replay).map(Number);
  const replayOf = (size) => {
    const runs = k.replay[size];
    return {
      seconds: median(runs.map((x) => x.seconds)),
      mbPerSec: median(runs.map((x) => x.mbPerSec)),
      mb: runs[0].mb,
      peakMiB: Math.max(...runs.map((x) => x.peakMiB)),
    };
  };
  const smallest = replayOf(Math.min(...replaySizes));
  const largest = replayOf(Math.max(...replaySizes));
  const resumeDuring = median(s.service.resume.during);
  const resumeAfter = median(s.service.resume.after);
  const fast = s.service.rows['delayMs 0, tokens 10000'];
  const disk = median(r.diskTtfe);

  const out = [
    `edgestream bench (${r.runner}${r.quick ? ', --quick' : ''}; ${r.rounds} interleaved rounds; ${fmt(r.seconds, 0)} s)`,
    '',
    row(['metric', 'service', 'bare', 'floor', 'floor-fetch', 'vs bare', 'vs floor'], widths),
    line('time to first event p50 (ms)', 'ttfeP50', 2),
    line('time to first event p99 (ms)', 'ttfeP99', 2),
    serviceOnly('  floor + one stored row, p50 (ms)', median(s['floor-sql'].ttfe)),
    row(
      [
        '  same, DO storage on disk, p50 (ms)',
        fmt(disk, 2),
        '',
        '',
        '',
        x(ratio(disk, summary.bare.ttfeP50)),
        x(ratio(disk, summary.floor.ttfeP50)),
      ],
      widths,
    ),
    line('one stream of 10k events (events/s)', 'throughput', 0),
    line(`${N_CONCURRENT} streams x ${EVENTS_PER_CONCURRENT} events (events/s)`, 'concurrent', 0),
    line('  errors', 'errors', 0, { ratios: false }),
    line('  workerd peak RSS during them (MiB)', 'peakMiB', 0, { ratios: false }),
    line('delivery delay at 30 ms pace p50 (ms)', 'lagP50', 1, { ratios: false }),
    line('delivery delay at 30 ms pace p99 (ms)', 'lagP99', 1, { ratios: false }),
    '',
    `one run (${READERS_RUN.tokens} deltas, ${READERS_RUN.delayMs} ms apart), then N readers by API key (RSS of ${k.pids?.length ?? '?'} workerd process(es)):`,
    row(['  readers', 'events/s', 'errors', 'slowest+ms', 'idle MiB', 'peak MiB', 'peak/idle'], [42, 11, 11, 11, 11, 9, 9]),
    ...k.readers.map((v) =>
      row(
        [
          `  ${v.count}`,
          fmt(v.eventsPerSec, 0),
          v.errors,
          fmt(v.slowestAfterFirstMs, 1),
          fmt(v.idleMiB, 0),
          fmt(v.peakMiB, 0),
          x(ratio(v.peakMiB, v.idleMiB)),
        ],
        [42, 11, 11, 11, 11, 9, 9],
      ),
    ),
    '',
    `replay of a finished run from its start, by a fresh instance (idle ${fmt(k.replayIdleMiB, 0)} MiB; median time, max RSS while replaying):`,
    row(['  events', 'seconds', 'MB', 'MB/s', 'peak MiB'], [42, 11, 11, 11, 11]),
    ...replaySizes.map((size) => {
      const v = replayOf(size);
      return row(
        [`  ${size.toLocaleString('en-US')}`, fmt(v.seconds, 2), fmt(v.mb, 1), fmt(v.mbPerSec, 0), fmt(v.peakMiB, 0)],
        [42, 11, 11, 11, 11],
      );
    }),
    '',
    `resume: reconnect with Last-Event-ID to the first replayed event (${s.service.resume.during.length} each):`,
    `  during a run  p50 ${fmt(resumeDuring, 2)} ms, p99 ${fmt(pct(s.service.resume.during, 99), 2)} ms`,
    `  after a run   p50 ${fmt(resumeAfter, 2)} ms, p99 ${fmt(pct(s.service.resume.after, 99), 2)} ms`,
    '',
    'SQLite rows written per 1,000 delta events (event rows + run row writes):',
    ...Object.entries(s.service.rows).map(
      ([key, v]) =>
        `  ${key.padEnd(26)} ${fmt(v.rowsPer1000Deltas, 1).padStart(8)} rows  (${fmt(v.eventsPerRow, 1)} events/row, ${v.runs} runs)`,
    ),
    '',
    'targets:',
    verdict(
      'time to first event p50 <= 1.25x the floor',
      ratio(sv.ttfeP50, summary.floor.ttfeP50) <= 1.25,
      x(ratio(sv.ttfeP50, summary.floor.ttfeP50)),
    ),
    verdict(
      `${N_CONCURRENT} concurrent streams >= 0.8x the bare Worker`,
      ratio(sv.concurrent, summary.bare.concurrent) >= 0.8,
      x(ratio(sv.concurrent, summary.bare.concurrent)),
    ),
    verdict(
      '1,000 readers of one run: 0 errors, slowest < 250 ms after the first',
      r1000 && r1000.errors === 0 && r1000.slowestAfterFirstMs < 250,
      r1000 && `${r1000.errors} errors, ${fmt(r1000.slowestAfterFirstMs, 0)} ms`,
    ),
    verdict(
      'workerd RSS with 1,000 readers < 2x idle',
      r1000 && r1000.peakMiB < 2 * r1000.idleMiB,
      r1000 && x(ratio(r1000.peakMiB, r1000.idleMiB)),
    ),
    verdict(
      `replay RSS flat within 10% (${Math.min(...replaySizes).toLocaleString('en-US')} vs ${Math.max(...replaySizes).toLocaleString('en-US')} events)`,
      largest.peakMiB <= smallest.peakMiB * 1.1,
      x(ratio(largest.peakMiB, smallest.peakMiB)),
    ),
    verdict(
      'resume p50 <= 5 ms (during and after a run)',
      resumeDuring <= 5 && resumeAfter <= 5,
      `${fmt(resumeDuring, 2)} / ${fmt(resumeAfter, 2)} ms`,
    ),
    verdict(
      'one stream >= 0.5x the bare Worker',
      ratio(sv.throughput, summary.bare.throughput) >= 0.5,
      x(ratio(sv.throughput, summary.bare.throughput)),
    ),
    verdict(
      'time to first event p50 <= 2.5x the bare Worker',
      ratio(sv.ttfeP50, summary.bare.ttfeP50) <= 2.5,
      x(ratio(sv.ttfeP50, summary.bare.ttfeP50)),
    ),
    verdict(`${N_CONCURRENT} concurrent streams with 0 errors`, sv.errors === 0, `${sv.errors}`),
    verdict(
      '<= 100 rows per 1,000 deltas (delayMs 0, tokens 10000)',
      fast && fast.rowsPer1000Deltas <= 100,
      fast && fmt(fast.rowsPer1000Deltas, 1),
    ),
  ];
  return out.join('\n');
}
