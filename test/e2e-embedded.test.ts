import { describe, expect, it } from 'vitest';
import { planRun, sendRun, type PlannedRun } from '../sim/simulate.js';
import { aggregateTruth, type TruthGroup } from '../sim/aggregate.js';
import { bitrateBucket, bitrateBucketLabel } from '../processors/accumulator.js';
import { RELATIVE_ACCURACY } from '../lib/histogram.js';
import type { Runtime } from '../lib/runtime.js';
import { processorIsIdle, replayEnv, startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';

/**
 * The embedded pipeline end to end on a real socket: simulated players with known ground truth →
 * POST /v1/beacons → bus → processor → sink → chDB → GET /v1/metrics, compared exactly.
 */

const WINDOW_MS = 10_000;

function plan(seed: number, views: number): PlannedRun {
  // Three hours ago, window-aligned, so every window is closed by the wall-clock watermark at the end.
  const startMs = Math.floor((Date.now() - 3 * 3_600_000) / WINDOW_MS) * WINDOW_MS;
  return planRun({ seed, views, startMs, periodMs: 300_000, windowMs: WINDOW_MS, batchSize: 20, batchIntervalMs: 5000 });
}

interface Point {
  timeMs: number;
  group: Record<string, string>;
  metrics: Record<string, unknown>;
}

async function query(runtime: Runtime, params: Record<string, string>): Promise<Point[]> {
  const res = await fetch(`${runtime.url}/v1/metrics?${new URLSearchParams(params)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { points: Point[] }).points;
}

async function settle(runtime: Runtime): Promise<void> {
  await waitUntil('processor to close every window and expire every session', () => processorIsIdle(runtime), 90_000);
  await runtime.drain();
}

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] ?? NaN;
}

const EXACT = ['attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'startingMs', 'playingMs', 'pausedMs', 'seekMs', 'rebufferMs', 'rebufferCount', 'seekCount'] as const;

function expectMatches(points: Point[], truth: TruthGroup[], stepMs: number): void {
  const key = (g: Record<string, string | undefined>): string => JSON.stringify(Object.entries(g).sort());
  const byKey = new Map(points.map((p) => [`${p.timeMs}|${key(p.group)}`, p]));
  expect(points.length).toBe(truth.length);
  for (const t of truth) {
    const p = byKey.get(`${t.bucketStartMs}|${key(t.group)}`);
    expect(p, `point for ${JSON.stringify(t.group)} @ ${t.bucketStartMs}`).toBeDefined();
    if (!p) continue;
    for (const f of EXACT) expect(p.metrics[f], `${f} ${JSON.stringify(t.group)}`).toBe(t[f]);
    expect(p.metrics.concurrentSessions).toBeCloseTo(t.activeMs / stepMs, 9);
    const knownMs = Object.values(t.playingMsByBitrateKbps).reduce((a, b) => a + b, 0);
    if (knownMs > 0) expect(p.metrics.avgBitrateKbps).toBeCloseTo(t.bitsPlayed / knownMs, 6);
    // Time-weighted bitrate distribution: truth per exact bitrate, folded into the fixed buckets.
    const buckets = new Map<string, number>();
    for (const [kbps, ms] of Object.entries(t.playingMsByBitrateKbps)) {
      const label = bitrateBucketLabel(bitrateBucket(Number(kbps)));
      buckets.set(label, (buckets.get(label) ?? 0) + ms);
    }
    const got = new Map((p.metrics.bitrateDistribution as Array<{ bucket: string; playingMs: number }>).map((b) => [b.bucket, b.playingMs]));
    expect(got).toEqual(new Map([...buckets].filter(([, ms]) => ms !== 0)));
    for (const [name, q] of [['vstP50Ms', 0.5], ['vstP95Ms', 0.95]] as const) {
      if (t.vstMs.length === 0) {
        expect(p.metrics[name]).toBeNull();
        continue;
      }
      const exact = exactQuantile(t.vstMs, q);
      expect(Math.abs((p.metrics[name] as number) - exact) / exact, `${name} ${JSON.stringify(t.group)}`).toBeLessThanOrEqual(RELATIVE_ACCURACY);
    }
  }
}

describe('embedded pipeline, end to end', () => {
  it('reports exactly the simulated ground truth, per CDN × country and per window', async () => {
    const run = plan(7, 400);
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir()));
    try {
      const stats = await sendRun(run, { target: runtime.url, concurrency: 8 });
      expect(stats.failedEvents).toBe(0);
      expect(stats.rejected).toBe(0);
      expect(stats.accepted).toBe(run.truth.events);
      await settle(runtime);

      const { startMs, endMs } = run.truth;
      const whole = { from: String(startMs), to: String(endMs), step: `${endMs - startMs}ms` };
      expectMatches(await query(runtime, { ...whole, group_by: 'cdn,country' }),
        aggregateTruth(run.truth, ['cdn', 'country']).map((g) => ({ ...g, bucketStartMs: startMs })), endMs - startMs);
      expectMatches(await query(runtime, { from: String(startMs), to: String(endMs), step: '10s', group_by: 'cdn' }),
        aggregateTruth(run.truth, ['cdn'], { stepMs: WINDOW_MS }), WINDOW_MS);
      const filtered = await query(runtime, { ...whole, filter: 'country:US|GB', group_by: 'deviceType' });
      expectMatches(filtered, aggregateTruth(run.truth, ['deviceType'], { dims: { country: ["US", "GB"] } }).map((g) => ({ ...g, bucketStartMs: startMs })), endMs - startMs);

      const dead = await runtime.store.query<{ n: number }>('SELECT count() AS n FROM qoe_dead_letters');
      expect(Number(dead[0]?.n)).toBe(0);
    } finally {
      await runtime.stop();
    }
  });

  it('a graceful restart in the middle of the traffic loses and doubles nothing', async () => {
    const run = plan(11, 300);
    const dir = tempDataDir();
    const half = Math.floor(run.batches.length / 2);
    const first = await startTestRuntime(replayEnv(dir));
    const s1 = await sendRun({ ...run, batches: run.batches.slice(0, half) }, { target: first.runtime.url, concurrency: 4 });
    expect(s1.failedEvents).toBe(0);
    // Sessions are open across the stop: their state must come back from the checkpoint.
    let openSessions = 0;
    for (const ps of first.runtime.processor?.partitions().values() ?? []) openSessions += ps.sessions.size;
    expect(openSessions).toBeGreaterThan(0);
    await first.runtime.stop();

    const second = await startTestRuntime(replayEnv(dir));
    try {
      const s2 = await sendRun({ ...run, batches: run.batches.slice(half) }, { target: second.runtime.url, concurrency: 4 });
      expect(s1.accepted + s2.accepted).toBe(run.truth.events);
      await settle(second.runtime);
      const { startMs, endMs } = run.truth;
      expectMatches(await query(second.runtime, { from: String(startMs), to: String(endMs), step: `${endMs - startMs}ms`, group_by: 'cdn' }),
        aggregateTruth(run.truth, ['cdn']).map((g) => ({ ...g, bucketStartMs: startMs })), endMs - startMs);
    } finally {
      await second.runtime.stop();
    }
  });

  it('with QOE_WINDOW_DIMENSIONS, keeps only those dimensions in the windows, exactly', async () => {
    const run = plan(13, 300);
    const kept = ['cdn', 'country', 'deviceType', 'streamType'] as const;
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir(), { QOE_WINDOW_DIMENSIONS: kept.join(',') }));
    try {
      const stats = await sendRun(run, { target: runtime.url, concurrency: 8 });
      expect(stats.accepted).toBe(run.truth.events);
      await settle(runtime);
      const { startMs, endMs } = run.truth;
      // Per window and every kept dimension: the truth summed over what is not kept.
      expectMatches(await query(runtime, { from: String(startMs), to: String(endMs), step: '10s', group_by: kept.join(',') }),
        aggregateTruth(run.truth, [...kept], { stepMs: WINDOW_MS }), WINDOW_MS);
      // What is not kept is stored as '' (the simulator sends content ids, player versions, custom1/2).
      const [stored] = await runtime.store.query<{ dropped: string }>(
        "SELECT toString(countIf(content_id != '' OR player_version != '' OR custom1 != '' OR asn != '')) AS dropped FROM qoe_metrics");
      expect(Number(stored?.dropped)).toBe(0);
      // Asking for a dimension that is not kept is a clear 400, not an empty group.
      const res = await fetch(`${runtime.url}/v1/metrics?group_by=content_id`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; details?: { field?: string } } };
      expect(body.error.code).toBe('QOE_ERR_QUERY_BAD_PARAMETER');
      expect(body.error.details?.field).toBe('group_by');
    } finally {
      await runtime.stop();
    }
  });
});
