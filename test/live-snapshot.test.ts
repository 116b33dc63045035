import { describe, expect, it } from 'vitest';
import type { MetricsPoint } from '../query/metrics.js';
import { badMetrics, buildSnapshot, DEFAULT_THRESHOLDS, HEADLINE_METRICS, liveQueries, resolveLiveSettings, type HeadlineMetric } from '../live/snapshot.js';

const WINDOW_MS = 10_000;
const NOW = 1_795_514_437_123; // not aligned to anything

function point(timeMs: number, metrics: Record<string, unknown>, group: Record<string, string> = {}): MetricsPoint {
  return { time: new Date(timeMs).toISOString(), timeMs, group, metrics };
}

const overall = (over: Partial<Record<HeadlineMetric, number | null>> = {}): Record<HeadlineMetric, number | null> => ({
  ...(Object.fromEntries(HEADLINE_METRICS.map((m) => [m, null])) as Record<HeadlineMetric, number | null>),
  ...over,
});

describe('resolveLiveSettings', () => {
  it('applies the documented defaults', () => {
    const s = resolveLiveSettings(WINDOW_MS);
    expect(s).toMatchObject({ windowMs: WINDOW_MS, stepMs: 30_000, rangeMs: 900_000, headlineMs: 300_000, maxTableRows: 50, staleAfterMs: 120_000 });
    expect(s.thresholds).toEqual(DEFAULT_THRESHOLDS);
  });

  it.each([
    [{ stepMs: 25_000 }, 30_000, 900_000],
    [{ stepMs: 1000 }, 10_000, 900_000],
    [{ stepMs: 60_000, rangeMs: 90_000 }, 60_000, 120_000],
  ])('rounds the step up to a multiple of the window and the range to a multiple of the step: %j', (opts, stepMs, rangeMs) => {
    const s = resolveLiveSettings(WINDOW_MS, opts);
    expect(s.stepMs).toBe(stepMs);
    expect(s.rangeMs).toBe(rangeMs);
  });

  it('merges partial thresholds over the defaults', () => {
    expect(resolveLiveSettings(WINDOW_MS, { thresholds: { vsfRate: 0.1 } }).thresholds).toEqual({ ...DEFAULT_THRESHOLDS, vsfRate: 0.1 });
  });
});

describe('liveQueries', () => {
  const s = resolveLiveSettings(WINDOW_MS);
  const q = liveQueries(NOW, s);

  it('ends the sparkline range at the current step start and the headline at the current window start', () => {
    expect(q.series.toMs).toBe(Math.floor(NOW / 30_000) * 30_000);
    expect(q.series.toMs - q.series.fromMs).toBe(900_000);
    expect(q.series.stepMs).toBe(30_000);
    expect(q.headline.toMs).toBe(Math.floor(NOW / WINDOW_MS) * WINDOW_MS);
    expect(q.headline.toMs - q.headline.fromMs).toBe(300_000);
    expect(q.headline.stepMs).toBe(300_000);
  });

  it('groups the table by cdn and country over the headline range and asks only for the metrics shown', () => {
    expect(q.table.groupBy).toEqual(['cdn', 'country']);
    expect([q.table.fromMs, q.table.toMs]).toEqual([q.headline.fromMs, q.headline.toMs]);
    expect(q.table.metrics).toEqual(['attempts', 'rebufferRatio', 'vsfRate', 'vstP95Ms']);
    expect(q.series.metrics).toEqual([...HEADLINE_METRICS]);
  });
});

describe('badMetrics', () => {
  const t = DEFAULT_THRESHOLDS;
  it.each([
    ['all fine', { attempts: 100, rebufferRatio: 0.005, vsfRate: 0.01, vstP95Ms: 2000 }, overall({ rebufferRatio: 0.005, vsfRate: 0.01, vstP95Ms: 2000 }), []],
    ['over absolute thresholds', { attempts: 100, rebufferRatio: 0.03, vsfRate: 0.06, vstP95Ms: 6000 }, overall(), ['rebufferRatio', 'vsfRate', 'vstP95Ms']],
    ['over 2× all traffic', { attempts: 100, rebufferRatio: 0.011, vsfRate: 0.01, vstP95Ms: 2000 }, overall({ rebufferRatio: 0.005, vsfRate: 0.01, vstP95Ms: 2000 }), ['rebufferRatio']],
    ['exactly 2× is not worse', { attempts: 100, rebufferRatio: 0.01, vsfRate: 0, vstP95Ms: 0 }, overall({ rebufferRatio: 0.005 }), []],
    ['too few attempts', { attempts: 9, rebufferRatio: 0.5, vsfRate: 1, vstP95Ms: 60_000 }, overall(), []],
    ['null metrics are never bad', { attempts: 100, rebufferRatio: null, vsfRate: null, vstP95Ms: null }, overall(), []],
    ['a zero reference disables the relative rule', { attempts: 100, rebufferRatio: 0.001, vsfRate: 0, vstP95Ms: 100 }, overall({ rebufferRatio: 0, vsfRate: 0, vstP95Ms: 0 }), []],
  ] as const)('%s', (_name, row, ref, expected) => {
    expect(badMetrics(row, ref, t)).toEqual(expected);
  });
});

describe('buildSnapshot', () => {
  const settings = resolveLiveSettings(WINDOW_MS);
  const queries = liveQueries(NOW, settings);
  const firstBucket = queries.series.fromMs;

  it('fills the series with one value per bucket, null where nothing was stored', () => {
    const snap = buildSnapshot({
      nowMs: NOW, settings, queries, headline: [], table: [], lastWindowStartMs: null,
      series: [point(firstBucket, { attempts: 4, rebufferRatio: 0.01 }), point(firstBucket + 60_000, { attempts: 2, rebufferRatio: null })],
    });
    expect(snap.series.startMs).toHaveLength(30);
    expect(snap.series.startMs[1]).toBe(firstBucket + 30_000);
    expect(snap.series.values.attempts.slice(0, 3)).toEqual([4, null, 2]);
    expect(snap.series.values.rebufferRatio.slice(0, 3)).toEqual([0.01, null, null]);
    expect(Object.keys(snap.series.values)).toEqual([...HEADLINE_METRICS]);
  });

  it('reports zero counts and null ratios over a range with no stored window, and no freshness', () => {
    const snap = buildSnapshot({ nowMs: NOW, settings, queries, series: [], headline: [], table: [], lastWindowStartMs: null });
    expect(snap.headline.metrics).toMatchObject({ attempts: 0, plays: 0, concurrentSessions: 0, vstP95Ms: null, rebufferRatio: null });
    expect(snap.freshness).toEqual({ lastWindowEndMs: null, ageMs: null });
    expect(snap.table.rows).toEqual([]);
  });

  it('takes the headline from the single headline point and measures freshness from the newest window end', () => {
    const lastWindowStartMs = Math.floor(NOW / WINDOW_MS) * WINDOW_MS - 70_000;
    const snap = buildSnapshot({
      nowMs: NOW, settings, queries, series: [], table: [], lastWindowStartMs,
      headline: [point(queries.headline.fromMs, { attempts: 120, plays: 114, vstP95Ms: 2310.4, avgBitrateKbps: 3120.5, concurrentSessions: 41.5 })],
    });
    expect(snap.headline).toMatchObject({ fromMs: queries.headline.fromMs, toMs: queries.headline.toMs });
    expect(snap.headline.metrics).toMatchObject({ attempts: 120, plays: 114, vstP95Ms: 2310.4, avgBitrateKbps: 3120.5, concurrentSessions: 41.5, vsfRate: null });
    expect(snap.freshness.lastWindowEndMs).toBe(lastWindowStartMs + WINDOW_MS);
    expect(snap.freshness.ageMs).toBe(NOW - lastWindowStartMs - WINDOW_MS);
  });

  it('sorts the table by attempts, highlights bad cells and bounds the rows', () => {
    const few = resolveLiveSettings(WINDOW_MS, { maxTableRows: 2 });
    const table = [
      point(queries.table.fromMs, { attempts: 50, rebufferRatio: 0.001, vsfRate: 0.2, vstP95Ms: 1000 }, { cdn: 'cdn-b', country: 'US' }),
      point(queries.table.fromMs, { attempts: 80, rebufferRatio: 0.001, vsfRate: 0.01, vstP95Ms: 1000 }, { cdn: 'cdn-a', country: 'US' }),
      point(queries.table.fromMs, { attempts: 3, rebufferRatio: 0.9, vsfRate: 1, vstP95Ms: 9000 }, { cdn: 'cdn-c', country: 'JP' }),
    ];
    const headline = [point(queries.headline.fromMs, { attempts: 133, rebufferRatio: 0.001, vsfRate: 0.02, vstP95Ms: 1000 })];
    const snap = buildSnapshot({ nowMs: NOW, settings: few, queries, series: [], headline, table, lastWindowStartMs: null });
    expect(snap.table.rows.map((r) => [r.cdn, r.country, r.attempts, r.bad])).toEqual([
      ['cdn-a', 'US', 80, []],
      ['cdn-b', 'US', 50, ['vsfRate']],
    ]);
    expect(snap.table.truncated).toBe(1);
    expect(snap.table.thresholds).toEqual(DEFAULT_THRESHOLDS);
  });

  it('is plain JSON (what the stream sends)', () => {
    const snap = buildSnapshot({ nowMs: NOW, settings, queries, series: [], headline: [], table: [], lastWindowStartMs: NOW - 60_000 });
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });
});
