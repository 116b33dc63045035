import { describe, expect, it } from 'vitest';
import { isQoeError } from '../lib/errors.js';
import { buildMetricsSql, finalizeRow, parseMetricsQuery, pickMetricsSource, type RawQuery } from './metrics.js';
import { bucketKey } from '../lib/histogram.js';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

describe('parseMetricsQuery', () => {
  it('defaults to the last hour as one bucket, all metrics', () => {
    const q = parseMetricsQuery({}, NOW, 10_000);
    expect(q.toMs - q.fromMs).toBe(3_600_000);
    expect(q.stepMs).toBe(3_600_000);
    expect(q.metrics).toContain('vstP95Ms');
  });

  it('reads relative times, durations, dimensions in either case and OR-filters', () => {
    const q = parseMetricsQuery({ from: 'now-15m', to: 'now', step: '1m', group_by: 'cdn,device_type', filter: ['country:US|GB', 'cdn:cdn-a'] }, NOW, 10_000);
    expect(q).toMatchObject({ fromMs: NOW - 900_000, toMs: NOW, stepMs: 60_000, groupBy: ['cdn', 'deviceType'] });
    expect(q.filters).toEqual([{ dim: 'country', values: ['US', 'GB'] }, { dim: 'cdn', values: ['cdn-a'] }]);
  });

  it.each<[RawQuery, string]>([
    [{ from: 'yesterday' }, 'from'],
    [{ from: '2000', to: '1000' }, 'from'],
    [{ step: '15s' }, 'step'],
    [{ step: '1x' }, 'step'],
    [{ from: '0', to: String(NOW), step: '10s' }, 'step'],
    [{ group_by: 'cdn,ip' }, 'group_by'],
    [{ group_by: 'cdn; DROP TABLE qoe_metrics' }, 'group_by'],
    [{ filter: 'cdn' }, 'filter'],
    [{ metrics: 'vst' }, 'metrics'],
  ])('rejects %j naming %s', (raw, field) => {
    let err: unknown;
    try {
      parseMetricsQuery(raw, NOW, 10_000);
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_QUERY_BAD_PARAMETER')).toBe(true);
    expect((err as { details: { field: string } }).details.field).toBe(field);
  });
});

describe('parseMetricsQuery with QOE_WINDOW_DIMENSIONS', () => {
  it.each<[RawQuery, string]>([
    [{ group_by: 'cdn,content_id' }, 'group_by'],
    [{ filter: 'custom1:premium' }, 'filter'],
  ])('rejects %j, a dimension not kept in the windows, naming %s', (raw, field) => {
    let err: unknown;
    try {
      parseMetricsQuery(raw, NOW, 10_000, ['cdn', 'country', 'deviceType']);
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_QUERY_BAD_PARAMETER')).toBe(true);
    expect((err as { details: { field: string } }).details.field).toBe(field);
    expect((err as Error).message).toMatch(/not kept in the window tables/);
  });

  it('takes the kept ones', () => {
    const q = parseMetricsQuery({ group_by: 'device_type', filter: 'country:US' }, NOW, 10_000, ['cdn', 'country', 'deviceType']);
    expect(q.groupBy).toEqual(['deviceType']);
    expect(q.filters).toEqual([{ dim: 'country', values: ['US'] }]);
  });
});

describe('buildMetricsSql', () => {
  it('puts user values only in typed parameters and identifiers only from the whitelist', () => {
    const q = parseMetricsQuery({ group_by: 'contentId', filter: "cdn:a'b" }, NOW, 10_000);
    const { sql, params } = buildMetricsSql(q);
    expect(sql).not.toContain("a'b");
    expect(sql).toContain('content_id');
    expect(params.f0).toEqual(["a'b"]);
  });
});

describe('pickMetricsSource', () => {
  const H = 3_600_000;
  const T0 = Date.UTC(2026, 10, 24, 0, 0, 0);
  it.each<[string, number, number, number, string]>([
    ['hour-aligned range and step', T0, T0 + 6 * H, H, 'qoe_metrics_1h'],
    ['hour-aligned range, whole-range step', T0, T0 + 6 * H, 6 * H, 'qoe_metrics_1h'],
    ['hour-aligned range, 5-minute step', T0, T0 + 6 * H, 300_000, 'qoe_metrics_1m'],
    ['minute-aligned range, hour step', T0 + 60_000, T0 + H + 60_000, H, 'qoe_metrics_1m'],
    ['to not aligned to the hour', T0, T0 + H + 60_000, 60_000, 'qoe_metrics_1m'],
    ['from not aligned to a minute', T0 + 10_000, T0 + H, 60_000, 'qoe_metrics'],
    ['10 s step', T0, T0 + H, 10_000, 'qoe_metrics'],
    ['90 s step', T0, T0 + H, 90_000, 'qoe_metrics'],
  ])('%s → %s', (_name, fromMs, toMs, stepMs, table) => {
    expect(pickMetricsSource({ fromMs, toMs, stepMs }).table).toBe(table);
  });

  it('reads roll-ups with -Merge combinators and the raw table with sum/sumMap', () => {
    const q = parseMetricsQuery({ from: String(T0), to: String(T0 + H), step: '1h' }, NOW, 10_000);
    const rolled = buildMetricsSql(q);
    expect(rolled.source.table).toBe('qoe_metrics_1h');
    expect(rolled.sql).toContain('FROM qoe_metrics_1h');
    expect(rolled.sql).toContain('sumMerge(playing_ms)');
    expect(rolled.sql).toContain('sumMapMerge(vst_hist) AS vst_hist');
    const raw = buildMetricsSql({ ...q, fromMs: T0 + 10_000 });
    expect(raw.sql).toContain('FROM qoe_metrics WHERE');
    expect(raw.sql).toContain('sumMap(vst_hist_keys, vst_hist_counts) AS vst_hist');
  });
});

describe('finalizeRow', () => {
  it('derives ratios from sums and percentiles from merged histograms', () => {
    const q = parseMetricsQuery({ from: '0', to: '60000', step: '1m' }, NOW, 10_000);
    const row = {
      bucket: 0, attempts: '10', plays: 8, vsf: 1, ebvs: 1, vpf: 2, ended: 5, vst_count: 8, vst_sum_ms: 8000,
      starting_ms: 1000, playing_ms: 90_000, paused_ms: 0, rebuffer_ms: 6000, rebuffer_count: 3, seek_ms: 4000, seek_count: 2,
      active_ms: 101_000, bits_played: 3000 * 90_000, dropped_frames: 0, requests: 4, request_errors: 1,
      vst_hist: [[bucketKey(1000)], [8]], bitrate_ms: [[6], [90_000]], ttfb_hist: [[], []],
    };
    const m = finalizeRow(row, q).metrics;
    expect(m.attempts).toBe(10);
    expect(m.vsfRate).toBe(0.1);
    expect(m.vpfRate).toBe(0.25);
    expect(m.rebufferRatio).toBeCloseTo(10_000 / 100_000, 12);
    expect(m.connectionRebufferRatio).toBeCloseTo(6000 / 100_000, 12);
    expect(m.rebufferFrequencyPerMin).toBeCloseTo(3 / 1.5, 12);
    expect(m.avgBitrateKbps).toBe(3000);
    expect(m.concurrentSessions).toBeCloseTo(101_000 / 60_000, 12);
    expect(m.requestErrorRate).toBe(0.25);
    expect(Math.abs((m.vstP50Ms as number) - 1000) / 1000).toBeLessThanOrEqual(0.02);
    expect(m.bitrateDistribution).toEqual([{ bucket: '3000-4000', minKbps: 3000, playingMs: 90_000, share: 1 }]);
    expect(m.ttfbP50Ms).toBeNull();
  });
});
