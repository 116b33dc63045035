/**
 * Real players end to end: hls.js and dash.js in Debian's Chromium play a local multi-rendition
 * stream from origin A, report CMCD v2 events to POST /v1/cmcd of the embedded runtime (real
 * socket), and GET /v1/metrics then shows the view: attempt, play, VST, playing time close to the
 * wall clock, bitrate distribution in the renditions' buckets. See docs/players-testing.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../lib/runtime.js';
import type { Config } from '../lib/config.js';
import { startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';
import { bucketOf, queryMetrics, settle } from './players/metrics.js';
import { startRig, type PlayerKind, type Rig } from './players/rig.js';

/** Seconds of playhead each player plays before the test stops it. */
const PLAY_S = 25;

let runtime: Runtime;
let config: Config;
let rig: Rig;

beforeAll(async () => {
  ({ runtime, config } = await startTestRuntime({
    PORT: '0',
    QOE_HOST: '127.0.0.1',
    QOE_DATA_DIR: tempDataDir('qoe-players-'),
    QOE_PARTITIONS: '2',
    // Real-time client timestamps: a short session timeout and idle-partition delay close the view soon after it stops.
    QOE_SESSION_TIMEOUT_MS: '6000',
    QOE_IDLE_PARTITION_MS: '1000',
    QOE_MAX_OUT_OF_ORDER_MS: '2000',
    QOE_SINK_FLUSH_MS: '200',
    QOE_LOG_LEVEL: 'warn',
  }));
  rig = await startRig(runtime.url);
}, 240_000);

afterAll(async () => {
  await rig?.close();
  await runtime?.stop();
});

function expectedBuckets(player: PlayerKind): Set<string> {
  // hls.js reports the variant's BANDWIDTH (video + audio), dash.js the video Representation's bandwidth.
  return new Set(player === 'hls'
    ? rig.media.variants.map((v) => bucketOf(v.bandwidth / 1000))
    : rig.media.spec.renditions.map((r) => bucketOf(r.videoKbps)));
}

async function playAndMeasure(player: PlayerKind): Promise<void> {
  const startedMs = Date.now();
  const { page, cid } = await rig.open(player);
  try {
    await waitUntil(`${player} to start playing`, () => page.playing(), 30_000);
    await waitUntil(`${player} to play ${PLAY_S} s`, async () => (await page.currentTime()) >= PLAY_S, (PLAY_S + 40) * 1000);
    await page.screenshot(`players-${player}.png`);
    const playheadS = await page.currentTime();
    await page.stop();
    const state = await page.state();
    const wallPlayMs = (state.stoppedAtMs ?? Date.now()) - (state.playingAtMs ?? startedMs);
    console.log(`[${player}] playhead ${playheadS.toFixed(1)} s, wall play ${wallPlayMs} ms, reports ${JSON.stringify(state.reports)}, ` +
      `origin A segments ${rig.a.segmentRequests(startedMs).length}, B ${rig.b.segmentRequests(startedMs).length}`);
    if (page.problems.length > 0) console.log(`[${player}] page problems:\n  ${page.problems.join('\n  ')}`);

    expect(state.errors).toEqual([]);
    expect(state.reports.posts).toBeGreaterThan(0);
    expect(state.reports.failed).toBe(0);
    expect(rig.a.segmentRequests(startedMs).length).toBeGreaterThan(0);
    expect(rig.b.segmentRequests(startedMs)).toEqual([]);

    await settle(runtime);
    const points = await queryMetrics(runtime, config.processor.windowMs, startedMs, `contentId:${cid}`);
    expect(points).toHaveLength(1);
    const m = points[0]!.metrics;
    console.log(`[${player}] metrics ${JSON.stringify(m)}`);
    expect(m.attempts).toBeGreaterThanOrEqual(1);
    expect(m.plays).toBeGreaterThanOrEqual(1);
    expect(m.vsf + m.vpf + m.ebvs).toBe(0);
    expect(m.vstP50Ms).not.toBeNull();
    expect(m.vstP50Ms!).toBeGreaterThan(0);
    expect(m.vstP50Ms!).toBeLessThan(10_000);
    // Playing time ≈ the time the playhead advanced (±30 %), and ≈ the wall-clock play time.
    expect(Math.abs(m.playingMs - playheadS * 1000) / (playheadS * 1000)).toBeLessThanOrEqual(0.3);
    expect(Math.abs(m.playingMs - wallPlayMs) / wallPlayMs).toBeLessThanOrEqual(0.3);
    const expected = expectedBuckets(player);
    expect(m.bitrateDistribution.length).toBeGreaterThan(0);
    for (const b of m.bitrateDistribution) expect(expected, `bucket ${b.bucket} is a rendition's`).toContain(b.bucket);
    const knownMs = m.bitrateDistribution.reduce((s, b) => s + b.playingMs, 0);
    expect(knownMs).toBeLessThanOrEqual(m.playingMs + 1);
    expect(knownMs).toBeGreaterThanOrEqual(0.7 * m.playingMs);
  } finally {
    await page.page.close();
  }
}

describe('real players → CMCD v2 → /v1/metrics', () => {
  it('hls.js plays the HLS stream from origin A and the view shows in /v1/metrics', () => playAndMeasure('hls'), 240_000);
  it('dash.js plays the DASH stream from origin A and the view shows in /v1/metrics', () => playAndMeasure('dash'), 240_000);
});
